"""Image to raw mesh by silhouette inflation: a closed, rounded solid of the object (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec

MESH_FORMATS = ("glb", "obj", "ply", "fbx")
MAX_CELLS = 128


def build_silhouette(ctx: JobContext, image: Path) -> Any:
    """Read, mask and inflate; input problems become ModelInputError."""
    from deployments.geometry.silhouette import silhouette_solid

    ctx.progress("finding the silhouette", 0.1)
    try:
        return silhouette_solid(image, max_cells=MAX_CELLS)
    except ValueError as exc:  # ImageFormatError is a ValueError too
        raise ModelInputError(f"Cannot use the input image: {exc}") from exc


def silhouette_info(silhouette: Any) -> dict[str, Any]:
    h, w = silhouette.rgba.shape[:2]
    return {
        "mask_method": silhouette.mask.method,
        "mask_coverage": round(silhouette.mask.coverage, 4),
        "image_size": [w, h],
        "grid_cells": list(silhouette.solid.grid_shape),
        "watertight": True,
        "approximate": True,
        "note": "a rounded inflation of the outline seen in the image, not a reconstruction "
        "of the hidden sides",
    }


class SilhouetteImageToRawMesh(Model):
    spec = ModelSpec(
        model_id="silhouette_image_to_raw_mesh",
        feature="image_to_raw_mesh",
        description="Closed, rounded solid inflated from the object's silhouette (CPU)",
        method="Silhouette inflation: alpha or border flood-fill mask, -Δu = 1 inside, "
        "height sqrt(u), front and back grids sharing the outline",
        inputs=("image",),
        output_formats=MESH_FORMATS,
        default_params={"output_format": "glb"},
        details={"device": "cpu", "grid_cells": MAX_CELLS, "watertight": True},
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.pbr import Surface, flat_mesh, mesh_outputs

        silhouette = build_silhouette(ctx, inputs["image"])
        solid = silhouette.solid
        ctx.progress("writing output", 0.8)
        clay = Surface((0.8, 0.8, 0.8), 0.0, 0.8)
        mesh = flat_mesh(solid.vertices, solid.faces, clay, name="inflated")
        fmt = params["output_format"]
        return ModelOutput(
            files=mesh_outputs(mesh, fmt, "image_mesh"),
            preview=mesh,
            generation_info={
                "method": self.spec.method,
                "vertex_count": int(len(solid.vertices)),
                "face_count": int(len(solid.faces)),
                "seed": params.get("seed"),
                "deterministic": True,
                **silhouette_info(silhouette),
            },
        )
