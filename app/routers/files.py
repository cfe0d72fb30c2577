"""File upload routes: streamed, size-limited, checked by content before acceptance."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.deps import Ctx, OwnedFile, Uploader
from app.uploads import receive_file
from app.validation import check_file
from meshforge.errors import FileUploadError
from meshforge.features import IMAGE_IN, MESH_IN
from persistence import files as file_db
from persistence.models import StoredFile, new_file_id, utcnow

router = APIRouter(prefix="/api/v1/file-upload", tags=["File Upload"])

MB = 1024 * 1024
_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
UPLOAD_EXAMPLE = {
    "file_id": "file_0123456789abcdef",
    "filename": "model.glb",
    "file_type": "mesh",
    "file_size_mb": 15.2,
    "upload_time": "2024-01-01T12:00:00Z",
    "expires_at": "2024-01-02T12:00:00Z",
}


def upload_body(record: StoredFile) -> dict[str, Any]:
    return {
        "file_id": record.id,
        "filename": record.filename,
        "file_type": record.file_type,
        "file_format": record.file_format,
        "file_size_mb": round(record.size_bytes / MB, 3),
        "file_size_bytes": record.size_bytes,
        "upload_time": record.created_at,
        "expires_at": record.expires_at,
        "info": record.info,
    }


async def accept_upload(
    ctx: Ctx, request: Request, kind: str, owner_id: str | None = None
) -> StoredFile:
    """Stream, check and store one uploaded file; nothing is kept if any step fails."""
    settings = ctx.settings
    limit = (settings.mesh_max_size_mb if kind == "mesh" else settings.image_max_size_mb) * MB
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        path, name = await receive_file(request, limit, Path(tmp))
        checked = await run_in_threadpool(
            check_file, kind, path, name, settings.image_max_resolution, FileUploadError
        )
        file_id = new_file_id()
        key = f"uploads/{file_id}/{checked.filename}"
        info = await run_in_threadpool(ctx.store.put_file, key, path, checked.content_type)
        now = utcnow()
        record = StoredFile(
            id=file_id,
            filename=checked.filename,
            file_type=kind,
            file_format=checked.fmt,
            content_type=checked.content_type,
            size_bytes=info.size,
            storage_key=key,
            info=checked.info,
            owner_id=owner_id,
            created_at=now,
            expires_at=now + timedelta(hours=settings.upload_retention_hours),
        )
        try:
            await run_in_threadpool(file_db.create_file, ctx.engine, record=record)
        except BaseException:
            await run_in_threadpool(ctx.store.delete, key)
            raise
        return record


@router.post(
    "/image",
    openapi_extra=_MULTIPART,
    responses={200: {"content": {"application/json": {"example": UPLOAD_EXAMPLE}}}},
)
async def upload_image(ctx: Ctx, request: Request, owner: Uploader) -> dict[str, Any]:
    """Upload an image and get a file id."""
    return upload_body(await accept_upload(ctx, request, "image", owner))


@router.post(
    "/mesh",
    openapi_extra=_MULTIPART,
    responses={200: {"content": {"application/json": {"example": UPLOAD_EXAMPLE}}}},
)
async def upload_mesh(ctx: Ctx, request: Request, owner: Uploader) -> dict[str, Any]:
    """Upload a mesh and get a file id."""
    return upload_body(await accept_upload(ctx, request, "mesh", owner))


@router.get("/metadata/{file_id}")
async def file_metadata(ctx: Ctx, record: OwnedFile) -> dict[str, Any]:
    """Metadata of an uploaded file."""
    available = record.expires_at is None or record.expires_at > utcnow()
    available = available and await run_in_threadpool(ctx.store.exists, record.storage_key)
    return {**upload_body(record), "is_available": available}


@router.get("/supported-formats")
async def upload_formats(ctx: Ctx) -> dict[str, Any]:
    """Upload formats and limits."""
    s = ctx.settings
    hours = s.upload_retention_hours
    return {
        "image": {
            "formats": [f".{f}" for f in IMAGE_IN],
            "max_size_mb": s.image_max_size_mb,
            "max_resolution": [s.image_max_resolution, s.image_max_resolution],
            "description": "Supported image formats for upload",
        },
        "mesh": {
            "formats": [f".{f}" for f in MESH_IN],
            "max_size_mb": s.mesh_max_size_mb,
            "description": "Supported mesh formats for upload",
        },
        "retention": {
            "default_hours": hours,
            "description": f"Files are automatically deleted after {hours:g} hours",
        },
    }
