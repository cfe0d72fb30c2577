"""Mesh generation routes: text/image to mesh, mesh painting, part completion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import schemas as s
from app.deps import Ctx, Submitter
from app.jobs import submit_job
from meshforge.features import IMAGE_IN, MESH_IN, MESH_OUT

router = APIRouter(prefix="/api/v1/mesh-generation", tags=["Mesh Generation"])


@router.post("/text-to-raw-mesh", response_model=s.JobQueued)
async def text_to_raw_mesh(ctx: Ctx, body: s.TextToRawMeshRequest, owner: Submitter) -> s.JobQueued:
    """Generate a 3D mesh from a text description."""
    return await submit_job(ctx, "text_to_raw_mesh", body, {}, owner_id=owner)


@router.post("/text-to-textured-mesh", response_model=s.JobQueued)
async def text_to_textured_mesh(
    ctx: Ctx, body: s.TextToTexturedMeshRequest, owner: Submitter
) -> s.JobQueued:
    """Generate a textured 3D mesh from a text description."""
    return await submit_job(ctx, "text_to_textured_mesh", body, {}, owner_id=owner)


@router.post("/text-mesh-painting", response_model=s.JobQueued)
async def text_mesh_painting(
    ctx: Ctx, body: s.TextMeshPaintingRequest, owner: Submitter
) -> s.JobQueued:
    """Texture an existing mesh from a text description."""
    return await submit_job(ctx, "text_mesh_painting", body, {"mesh": True}, owner_id=owner)


@router.post("/image-to-raw-mesh", response_model=s.JobQueued)
async def image_to_raw_mesh(
    ctx: Ctx, body: s.ImageToRawMeshRequest, owner: Submitter
) -> s.JobQueued:
    """Generate a 3D mesh from an image."""
    return await submit_job(ctx, "image_to_raw_mesh", body, {"image": True}, owner_id=owner)


@router.post("/image-to-textured-mesh", response_model=s.JobQueued)
async def image_to_textured_mesh(
    ctx: Ctx, body: s.ImageToTexturedMeshRequest, owner: Submitter
) -> s.JobQueued:
    """Generate a textured 3D mesh from an image."""
    return await submit_job(
        ctx,
        "image_to_textured_mesh",
        body,
        {"image": True, "texture_image": False},
        owner_id=owner,
    )


@router.post("/image-mesh-painting", response_model=s.JobQueued)
async def image_mesh_painting(
    ctx: Ctx, body: s.ImageMeshPaintingRequest, owner: Submitter
) -> s.JobQueued:
    """Texture an existing mesh from an image."""
    return await submit_job(
        ctx, "image_mesh_painting", body, {"image": True, "mesh": True}, owner_id=owner
    )


@router.post("/part-completion", response_model=s.JobQueued)
async def part_completion(ctx: Ctx, body: s.PartCompletionRequest, owner: Submitter) -> s.JobQueued:
    """Complete missing parts of a 3D mesh."""
    return await submit_job(ctx, "part_completion", body, {"mesh": True}, owner_id=owner)


@router.get("/supported-formats")
async def generation_formats(ctx: Ctx) -> dict[str, Any]:
    """Formats for mesh generation."""
    st = ctx.settings
    return {
        "input_formats": {
            "text": ["string"],
            "image": list(IMAGE_IN),
            "mesh": list(MESH_IN),
            "base64": ["image/png", "image/jpeg", "model/gltf-binary"],
        },
        "output_formats": {"mesh": list(MESH_OUT), "texture": ["png", "jpg"]},
        "upload_limits": {
            "image_max_size_mb": st.image_max_size_mb,
            "mesh_max_size_mb": st.mesh_max_size_mb,
            "image_max_resolution": [st.image_max_resolution] * 2,
        },
    }
