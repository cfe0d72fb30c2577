"""The one place where exceptions become the spec's error envelope."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from meshforge.errors import MeshForgeError

log = logging.getLogger("meshforge.gateway")

_HTTP_CODES = {
    400: "INVALID_VALUE",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


def envelope(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": code, "message": message, "detail": detail}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without echoing inputs back (they may be megabytes of base64)."""
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
            "message": err.get("msg", "invalid"),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MeshForgeError)
    async def _domain(_: Request, exc: MeshForgeError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return envelope(exc.status_code, exc.code, exc.message, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _validation_detail(exc)
        first = detail[0] if detail else {"field": "body", "message": "invalid"}
        return envelope(
            422, "INVALID_VALUE", f"Invalid {first['field']}: {first['message']}", detail
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"No route {request.url.path}" if exc.detail == "Not Found" else exc.detail
            return envelope(404, "NOT_FOUND", str(message))
        if exc.status_code == 405:
            return envelope(405, "API_ERROR", f"Method {request.method} not allowed here")
        code = _HTTP_CODES.get(exc.status_code, "API_ERROR")
        return envelope(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(500, "INTERNAL_ERROR", "Internal server error")
