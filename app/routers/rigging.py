"""Auto-rigging routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app import schemas as s
from app.deps import Ctx, Submitter, Uploader
from app.jobs import submit_job
from app.routers.files import _MULTIPART, accept_upload, upload_body
from meshforge.features import FEATURES

router = APIRouter(prefix="/api/v1/auto-rigging", tags=["Auto Rigging"])


@router.post("/generate-rig", response_model=s.JobQueued)
async def generate_rig(ctx: Ctx, body: s.GenerateRigRequest, owner: Submitter) -> s.JobQueued:
    """Generate a skeleton (and skinning) for a 3D mesh."""
    return await submit_job(ctx, "auto_rig", body, {"mesh": True}, owner_id=owner)


@router.post("/upload-mesh", openapi_extra=_MULTIPART)
async def upload_rig_mesh(ctx: Ctx, request: Request, owner: Uploader) -> dict[str, Any]:
    """Upload a mesh for auto-rigging."""
    record = await accept_upload(ctx, request, "mesh", owner)
    # `file_path` is the object key of the upload, never a server path.
    return {
        **upload_body(record),
        "file_path": record.storage_key,
        "size": record.size_bytes,
        "content_type": record.content_type,
    }


@router.get("/supported-formats")
async def rigging_formats() -> dict[str, Any]:
    """Formats for auto-rigging."""
    f = FEATURES["auto_rig"]
    return {"input_formats": list(f.input_formats), "output_formats": list(f.output_formats)}
