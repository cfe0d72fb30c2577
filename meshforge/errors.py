"""Domain errors carrying their HTTP status and code; translated in one place (app.errors)."""

from __future__ import annotations

import math
from typing import Any


class MeshForgeError(Exception):
    """Base of every error that reaches a client as `{"error", "message", "detail"}`."""

    status_code = 500
    code = "INTERNAL_ERROR"
    headers: dict[str, str] | None = None  # extra response headers (WWW-Authenticate, ...)

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "detail": self.detail}


class InvalidValue(MeshForgeError):
    status_code = 422
    code = "INVALID_VALUE"


class BadRequest(MeshForgeError):
    status_code = 400
    code = "INVALID_VALUE"


class NotFound(MeshForgeError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(MeshForgeError):
    status_code = 409
    code = "API_ERROR"


class FileUploadError(MeshForgeError):
    status_code = 400
    code = "FILE_UPLOAD_ERROR"


class PayloadTooLarge(MeshForgeError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class ModelNotAvailable(MeshForgeError):
    status_code = 400
    code = "MODEL_NOT_AVAILABLE"


class InsufficientVram(MeshForgeError):
    status_code = 507
    code = "INSUFFICIENT_VRAM"


class JobFailed(MeshForgeError):
    """A model could not process its input; becomes the job's error, not an HTTP reply."""

    status_code = 422
    code = "JOB_FAILED"


class ServiceUnavailable(MeshForgeError):
    status_code = 503
    code = "API_ERROR"


class Unauthorized(MeshForgeError):
    """No valid credentials: the token is missing, unknown, expired or revoked."""

    status_code = 401
    code = "UNAUTHORIZED"
    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"}


class Forbidden(MeshForgeError):
    status_code = 403
    code = "FORBIDDEN"


class RateLimited(MeshForgeError):
    """Too many requests; `Retry-After` (whole seconds) says when the next one can pass."""

    status_code = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: float, detail: Any = None) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(message, {"retry_after_s": seconds, **(detail or {})})
        self.headers = {"Retry-After": str(seconds)}
