"""Mesh retopology routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import schemas as s
from app.deps import Ctx, Submitter
from app.jobs import submit_job
from meshforge.features import FEATURES

router = APIRouter(prefix="/api/v1/mesh-retopology", tags=["Mesh Retopology"])


@router.post("/retopologize-mesh", response_model=s.JobQueued)
async def retopologize_mesh(ctx: Ctx, body: s.RetopologizeRequest, owner: Submitter) -> s.JobQueued:
    """Rebuild a mesh's topology with fewer polygons."""
    return await submit_job(ctx, "retopology", body, {"mesh": True}, owner_id=owner)


def models_details(ctx: Ctx, feature: str) -> dict[str, Any]:
    ids = ctx.catalogue.by_feature.get(feature, [])
    details = {}
    for mid in ids:
        spec = ctx.catalogue.specs[mid]
        details[mid] = {
            "description": spec.description,
            "method": spec.method,
            "default": mid == ctx.catalogue.default_for(feature),
            **spec.details,
        }
    return {"available_models": ids, "models_details": details}


@router.get("/available-models")
async def retopology_models(ctx: Ctx) -> dict[str, Any]:
    """Retopology models and their specifications."""
    return models_details(ctx, "retopology")


@router.get("/supported-formats")
async def retopology_formats() -> dict[str, Any]:
    """Formats for mesh retopology."""
    f = FEATURES["retopology"]
    return {"input_formats": list(f.input_formats), "output_formats": list(f.output_formats)}
