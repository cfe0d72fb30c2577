"""The FastAPI application: routers, error envelope, limits, background upkeep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.context import AppContext
from app.deps import context_of
from app.errors import install_error_handlers
from app.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware, SettingsCORSMiddleware
from app.routers import (
    files,
    generation,
    retopology,
    rigging,
    scheduler,
    segmentation,
    system,
    users,
    uv,
)
from meshforge import __version__
from persistence import files as file_db
from persistence import users as user_db
from persistence.models import utcnow

log = logging.getLogger("meshforge.gateway")

DESCRIPTION = (
    "3D generative models behind one REST API: mesh generation, texturing, part completion, "
    "segmentation, auto-rigging, retopology and UV unwrapping, scheduled on Ray Serve. "
    "Jobs are asynchronous: submit, poll `GET /api/v1/system/jobs/{job_id}`, download. "
    'Errors are `{"error", "message", "detail"}`. With `user_auth_enabled`, send '
    "`Authorization: Bearer <token>` (from `POST /api/v1/users/login`)."
)
TOKEN_KEEP = timedelta(days=7)  # expired or revoked tokens stay listed this long


async def sweep_once(ctx: AppContext) -> int:
    """Delete expired uploads: the object first, then the row (a crash leaves a row that the
    next sweep removes, never an orphaned object without a row)."""
    removed = 0
    for record in await run_in_threadpool(file_db.expired_files, ctx.engine, now=utcnow()):
        await run_in_threadpool(ctx.store.delete, record.storage_key)
        await run_in_threadpool(file_db.delete_file_row, ctx.engine, record.id)
        removed += 1
    if removed:
        log.info("retention sweep removed %d expired uploads", removed)
    purged = await run_in_threadpool(
        lambda: user_db.purge_tokens(ctx.engine, before=utcnow() - TOKEN_KEEP)
    )
    if purged:
        log.info("retention sweep removed %d dead API tokens", purged)
    return removed


async def refresh_availability(ctx: AppContext) -> None:
    """Take the models whose replicas cannot load them off the catalogue (and back on)."""
    if ctx.jobs is None:
        return
    status = await ctx.jobs.status()
    if status is None:
        return
    ctx.catalogue.unavailable = {
        mid: row["unavailable"]
        for mid, row in status.get("models", {}).items()
        if row.get("unavailable") and mid in ctx.catalogue.configs
    }


async def _upkeep(ctx: AppContext) -> None:
    """Retention sweeps and job-manager keepalive (it is recreated if it vanished)."""
    if ctx.jobs is not None:
        try:
            await ctx.jobs.start()
        except Exception:
            log.exception("job manager did not start; retrying in the background")
    while True:
        with suppress(Exception):
            if ctx.jobs is not None:
                await ctx.jobs.keepalive()
                await refresh_availability(ctx)
        try:
            await sweep_once(ctx)
        except Exception:
            log.exception("retention sweep failed")
        await asyncio.sleep(min(ctx.settings.sweep_interval_s, 10.0))


def create_app(ctx_factory: Any = None) -> FastAPI:
    """The app; `ctx_factory()` builds the AppContext at startup (or set `app.state.ctx`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context_of(app) is None and ctx_factory is not None:
            app.state.ctx = await run_in_threadpool(ctx_factory)
        ctx = context_of(app)
        task = asyncio.get_running_loop().create_task(_upkeep(ctx)) if ctx else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        title="MeshForge API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    install_error_handlers(app)
    for router in (
        system.health_router,
        system.router,
        scheduler.router,
        users.router,
        files.router,
        generation.router,
        segmentation.router,
        rigging.router,
        retopology.router,
        uv.router,
    ):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # also on the 413 that BodyLimit sends
    app.add_middleware(SettingsCORSMiddleware)  # outermost: preflights never reach the API
    return app
