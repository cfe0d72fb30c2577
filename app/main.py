"""The FastAPI application: routers, error envelope, limits, background upkeep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import AppContext
from app.deps import context_of
from app.errors import envelope, install_error_handlers
from app.routers import files, generation, retopology, rigging, segmentation, system, uv
from meshforge import __version__
from meshforge.errors import PayloadTooLarge
from meshforge.settings import Settings
from persistence import files as file_db
from persistence.models import utcnow

log = logging.getLogger("meshforge.gateway")

DESCRIPTION = (
    "3D generative models behind one REST API: mesh generation, texturing, part completion, "
    "segmentation, auto-rigging, retopology and UV unwrapping, scheduled on Ray Serve. "
    "Jobs are asynchronous: submit, poll `GET /api/v1/system/jobs/{job_id}`, download. "
    'Errors are `{"error", "message", "detail"}`.'
)


class BodyLimitMiddleware:
    """Refuses non-multipart bodies over the JSON limit while they stream in (multipart
    uploads enforce their own, per-kind limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = context_of(scope.get("app"))
        max_bytes = (ctx.settings if ctx else Settings()).json_body_max_mb * 2**20
        headers = dict(scope.get("headers") or [])
        if headers.get(b"content-type", b"").startswith(b"multipart/"):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > max_bytes:
            await _refuse(max_bytes, scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise PayloadTooLarge(f"Request body exceeds {max_bytes // 2**20} MB")
            return message

        await self.app(scope, counted, send)


async def _refuse(max_bytes: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = envelope(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {max_bytes // 2**20} MB")
    await response(scope, receive, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
    return removed


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
        files.router,
        generation.router,
        segmentation.router,
        rigging.router,
        retopology.router,
        uv.router,
    ):
        app.include_router(router)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    return app
