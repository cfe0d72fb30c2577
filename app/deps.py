"""Dependency aliases for the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.context import AppContext
from meshforge.errors import ServiceUnavailable

_process_ctx: AppContext | None = None


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
