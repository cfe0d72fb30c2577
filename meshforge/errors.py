"""Domain errors carrying their HTTP status and code; translated in one place (app.errors)."""

from __future__ import annotations

from typing import Any


class MeshForgeError(Exception):
    """Base of every error that reaches a client as `{"error", "message", "detail"}`."""

    status_code = 500
    code = "INTERNAL_ERROR"

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
    status_code = 401
    code = "UNAUTHORIZED"


class Forbidden(MeshForgeError):
    status_code = 403
    code = "FORBIDDEN"
