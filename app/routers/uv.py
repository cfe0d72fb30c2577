"""UV unwrapping routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import schemas as s
from app.deps import Ctx, Submitter
from app.jobs import submit_job
from app.routers.retopology import models_details
from meshforge.features import FEATURES

router = APIRouter(prefix="/api/v1/mesh-uv-unwrapping", tags=["UV Unwrapping"])

PACK_METHODS = {
    "blender": {
        "description": "Packed atlas (xatlas packing on CPU models, bpy on PartUV)",
        "requirements": "None for CPU models; bpy for PartUV",
        "speed": "fast",
        "features": [],
    },
    "uvpackmaster": {
        "description": "Professional packing with part grouping support",
        "requirements": "UVPackMaster add-on (paid, requires separate installation)",
        "speed": "medium",
        "features": ["Part-based packing", "Multi-atlas support"],
    },
    "none": {
        "description": "No packing - outputs unwrapped UV charts without arrangement",
        "requirements": "None",
        "speed": "fastest",
        "features": [],
    },
}


@router.post("/unwrap-mesh", response_model=s.JobQueued)
async def unwrap_mesh(ctx: Ctx, body: s.UnwrapMeshRequest, owner: Submitter) -> s.JobQueued:
    """Generate UV coordinates for a 3D mesh."""
    return await submit_job(ctx, "uv_unwrapping", body, {"mesh": True}, owner_id=owner)


@router.get("/pack-methods")
async def pack_methods() -> dict[str, Any]:
    """UV packing methods."""
    return {"pack_methods": PACK_METHODS}


@router.get("/available-models")
async def uv_models(ctx: Ctx) -> dict[str, Any]:
    """UV unwrapping models and their specifications."""
    return models_details(ctx, "uv_unwrapping")


@router.get("/supported-formats")
async def uv_formats() -> dict[str, Any]:
    """Formats for UV unwrapping."""
    f = FEATURES["uv_unwrapping"]
    return {"input_formats": list(f.input_formats), "output_formats": list(f.output_formats)}
