"""Image to textured mesh: silhouette inflation with the image projected on the front (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec
from deployments.silhouette_image_to_raw_mesh import (
    MAX_CELLS,
    MESH_FORMATS,
    build_silhouette,
    silhouette_info,
)

DEFAULT_RESOLUTION = 1024


class SilhouetteImageToTexturedMesh(Model):
    spec = ModelSpec(
        model_id="silhouette_image_to_textured_mesh",
        feature="image_to_textured_mesh",
        description="Silhouette-inflated solid textured with the input image (CPU)",
        method="Silhouette inflation with planar projection of the image (front; back "
        "mirrored), backdrop filled from the nearest object colour",
        inputs=("image", "texture_image"),
        output_formats=MESH_FORMATS,
        default_params={"output_format": "glb", "texture_resolution": DEFAULT_RESOLUTION},
        details={"device": "cpu", "grid_cells": MAX_CELLS, "texture_resolution": [256, 4096]},
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.pbr import mesh_outputs, textured_mesh
        from deployments.geometry.silhouette import image_texture, read_image, separate_texture

        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        silhouette = build_silhouette(ctx, inputs["image"])
        solid = silhouette.solid
        ctx.progress("projecting the texture", 0.5)
        if inputs.get("texture_image") is not None:
            try:
                source = read_image(inputs["texture_image"])
            except ValueError as exc:
                raise ModelInputError(f"Cannot use the texture image: {exc}") from exc
            texture, uv, how = separate_texture(source, silhouette, resolution)
        else:
            texture = image_texture(silhouette.rgba, silhouette.mask.mask, resolution)
            uv, how = solid.uv, "input image, planar front projection, back mirrored"
        ctx.progress("writing output", 0.8)
        mesh = textured_mesh(solid.vertices, solid.faces, uv, texture, 0.0, 0.8, name="inflated")
        fmt = params["output_format"]
        return ModelOutput(
            files=mesh_outputs(mesh, fmt, "image_textured_mesh", {"texture_basecolor": texture}),
            preview=mesh,
            generation_info={
                "method": self.spec.method,
                "vertex_count": int(len(solid.vertices)),
                "face_count": int(len(solid.faces)),
                "texture_resolution": resolution,
                "texture_source": how,
                "seed": params.get("seed"),
                "deterministic": True,
                **silhouette_info(silhouette),
            },
        )
