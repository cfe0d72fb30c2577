"""Mesh segmentation routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import schemas as s
from app.deps import Ctx, Submitter
from app.jobs import submit_job
from meshforge.features import FEATURES

router = APIRouter(prefix="/api/v1/mesh-segmentation", tags=["Mesh Segmentation"])


@router.post("/segment-mesh", response_model=s.JobQueued)
async def segment_mesh(ctx: Ctx, body: s.SegmentMeshRequest, owner: Submitter) -> s.JobQueued:
    """Segment a 3D mesh into parts."""
    return await submit_job(ctx, "mesh_segmentation", body, {"mesh": True}, owner_id=owner)


@router.get("/supported-formats")
async def segmentation_formats() -> dict[str, Any]:
    """Formats for mesh segmentation."""
    f = FEATURES["mesh_segmentation"]
    return {"input_formats": list(f.input_formats), "output_formats": list(f.output_formats)}
