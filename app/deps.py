"""Dependency aliases for the routers: the context, who is calling, and what they may touch.

Every route that reads or changes one job or upload takes `OwnedJob` / `OwnedFile`, so the
ownership rule is written once: with auth on, another user's id answers 404 exactly like an
id that does not exist (ids cannot be probed); admins see everything; with auth off
everything is open, as the spec says.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.accounts import Principal, authenticate
from app.context import AppContext
from meshforge.errors import Forbidden, NotFound, RateLimited, ServiceUnavailable
from persistence import files as file_db
from persistence import jobs as job_db
from persistence.models import Job, StoredFile

ACTIVE_CAP_RETRY_S = 5.0  # a job slot frees when one finishes; poll again in a few seconds

_process_ctx: AppContext | None = None
_bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/v1/users/login or /api/v1/users/tokens "
    "(only checked when user_auth_enabled is true).",
)


def set_process_context(ctx: AppContext) -> None:
    """Set the context for this process. Serve copies the FastAPI app into the replica, so
    the gateway's constructor cannot reach `app.state` of the copy that serves requests."""
    global _process_ctx
    _process_ctx = ctx


def context_of(app: object) -> AppContext | None:
    return getattr(getattr(app, "state", None), "ctx", None) or _process_ctx


def get_ctx(request: Request) -> AppContext:
    ctx = context_of(request.app)
    if ctx is None:
        raise ServiceUnavailable("The service is starting")
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_caller(request: Request, ctx: Ctx, _: Bearer) -> Principal | None:
    """None when auth is off; otherwise the token's principal, or 401."""
    if not ctx.settings.user_auth_enabled:
        return None
    return await run_in_threadpool(authenticate, ctx, request.headers.get("authorization"))


Caller = Annotated[Principal | None, Depends(get_caller)]


def scope_of(caller: Principal | None) -> str | None:
    """The owner id that reads are restricted to; None means all rows (auth off, admin)."""
    return None if caller is None or caller.is_admin else caller.user_id


def owner_of(caller: Principal | None) -> str | None:
    """The owner recorded on new jobs and uploads."""
    return caller.user_id if caller is not None else None


async def require_admin(caller: Caller) -> Principal | None:
    """Admins only when auth is on (401 without a token, 403 for other users)."""
    if caller is not None and not caller.is_admin:
        raise Forbidden("This route is for admins")
    return caller


AdminOnly = Annotated[Principal | None, Depends(require_admin)]
"""Routes that change the cluster (model load/unload, when they land) take this."""


async def accounts_enabled(ctx: Ctx) -> None:
    """The users API exists only when user_auth_enabled is true."""
    if not ctx.settings.user_auth_enabled:
        raise NotFound("User accounts are disabled on this server (user_auth_enabled is false)")


async def get_current_user(request: Request, ctx: Ctx, _: Bearer) -> Principal:
    await accounts_enabled(ctx)
    return await run_in_threadpool(authenticate, ctx, request.headers.get("authorization"))


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def owned_job(ctx: Ctx, caller: Caller, job_id: str) -> Job:
    return await run_in_threadpool(job_db.require_job, ctx.engine, job_id, scope_of(caller))


async def owned_file(ctx: Ctx, caller: Caller, file_id: str) -> StoredFile:
    return await run_in_threadpool(file_db.require_file, ctx.engine, file_id, scope_of(caller))


OwnedJob = Annotated[Job, Depends(owned_job)]
OwnedFile = Annotated[StoredFile, Depends(owned_file)]


async def submitter(ctx: Ctx, caller: Caller) -> str | None:
    """The owner of a job about to be submitted, after the per-user limits: a token bucket
    on submissions (per gateway replica) and a cap on queued + processing jobs (counted in
    the database, so it holds across replicas)."""
    if caller is None:
        return None
    settings = ctx.settings
    wait = ctx.limits.submissions.take(caller.user_id)
    if wait > 0:
        raise RateLimited(
            "Too many job submissions; retry later",
            wait,
            {"per_minute": settings.job_submissions_per_minute},
        )
    active = await run_in_threadpool(job_db.count_active_jobs, ctx.engine, owner_id=caller.user_id)
    if active >= settings.max_active_jobs_per_user:
        raise RateLimited(
            f"{active} of your jobs are queued or processing; the limit is "
            f"{settings.max_active_jobs_per_user}",
            ACTIVE_CAP_RETRY_S,
            {"active_jobs": active, "max_active_jobs": settings.max_active_jobs_per_user},
        )
    return caller.user_id


Submitter = Annotated[str | None, Depends(submitter)]


async def uploader(ctx: Ctx, caller: Caller) -> str | None:
    """The owner of an upload about to stream in; uploads have their own token bucket (same
    rate as submissions), checked before a byte of the body is read."""
    if caller is None:
        return None
    wait = ctx.limits.uploads.take(caller.user_id)
    if wait > 0:
        raise RateLimited("Too many uploads; retry later", wait)
    return caller.user_id


Uploader = Annotated[str | None, Depends(uploader)]
