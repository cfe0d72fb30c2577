"""ASGI middleware of the gateway: body limits, security headers, CORS.

Settings arrive after the FastAPI app is built (Serve passes them to the Gateway's
constructor), so each middleware reads them from the app context at request time.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.deps import context_of
from app.errors import envelope
from meshforge.errors import PayloadTooLarge
from meshforge.settings import Settings

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their scripts and styles from jsDelivr and run an inline script.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    b"worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


def _settings(scope: Scope) -> Settings:
    ctx = context_of(scope.get("app"))
    return ctx.settings if ctx else Settings()


class BodyLimitMiddleware:
    """Refuses non-multipart bodies over the JSON limit while they stream in (multipart
    uploads enforce their own, per-kind limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = _settings(scope).json_body_max_mb * 2**20
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


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


class SecurityHeadersMiddleware:
    """Headers that stop browsers from sniffing, framing or caching API answers; a strict
    CSP on API routes and one that lets the documentation pages load."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else API_CSP
        no_store = path.startswith("/api/v1/users")  # tokens must not sit in caches

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"content-security-policy", csp),
                ]
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SettingsCORSMiddleware:
    """CORS from `cors_origins`: closed (no CORS headers at all) while the list is empty.
    Bearer tokens travel in a header, never cookies, so credentials stay disallowed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: Any = None
        self._origins: tuple[str, ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origins = tuple(_settings(scope).cors_origins) if scope["type"] == "http" else ()
        if not origins:
            await self.app(scope, receive, send)
            return
        if origins != self._origins:
            self._origins = origins
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["Retry-After", "Content-Disposition"],
            )
        await self._cors(scope, receive, send)
