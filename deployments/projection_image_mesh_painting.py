"""Image mesh painting: project the image onto the mesh from a fitted front camera and bake
it into a texture on new UVs; unseen surface takes the nearest seen colours (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec

MESH_FORMATS = ("glb", "obj", "ply", "fbx")
DEFAULT_RESOLUTION = 1024


class ProjectionImageMeshPainting(Model):
    spec = ModelSpec(
        model_id="projection_image_mesh_painting",
        feature="image_mesh_painting",
        description="Projects the image onto the mesh from the front and bakes a texture (CPU)",
        method="xatlas UVs, orthographic front projection fitted to the mesh bounds with a "
        "depth test, unseen texels filled from the nearest seen surface, gutters dilated",
        inputs=("image", "mesh"),
        output_formats=MESH_FORMATS,
        default_params={"output_format": "glb", "texture_resolution": DEFAULT_RESOLUTION},
        details={"device": "cpu", "texture_resolution": [256, 4096], "view": "front (+Z)"},
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.bake import project_image
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mask import foreground_mask
        from deployments.geometry.mesh_io import load_mesh
        from deployments.geometry.pbr import mesh_outputs, textured_mesh
        from deployments.geometry.silhouette import read_image
        from deployments.geometry.texels import bake_size, compose, sample_texels, unwrap, upscale

        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        ctx.progress("loading inputs", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        try:
            rgba = read_image(inputs["image"])
            mask = foreground_mask(rgba)
        except ValueError as exc:
            raise ModelInputError(f"Cannot use the input image: {exc}") from exc
        ctx.progress("unwrapping UVs", 0.15)
        size = bake_size(resolution)
        atlas = unwrap(mesh.vertices, mesh.faces, size)
        ctx.progress("locating texels", 0.45)
        texels = sample_texels(atlas, size)
        ctx.progress("projecting the image", 0.6)
        colors, seen = project_image(
            texels, atlas.vertices, atlas.faces, rgba[..., :3], mask.mask, mask.bbox()
        )
        ctx.progress("baking the texture", 0.75)
        texture = upscale(compose(texels, colors), resolution)
        painted = textured_mesh(atlas.vertices, atlas.faces, atlas.uv, texture, 0.0, 0.8)
        ctx.progress("writing output", 0.85)
        fmt = params["output_format"]
        visible = float(seen.mean()) if len(seen) else 0.0
        return ModelOutput(
            files=mesh_outputs(painted, fmt, "painted_mesh", {"texture_basecolor": texture}),
            preview=painted,
            generation_info={
                "method": self.spec.method,
                "vertex_count": int(len(atlas.vertices)),
                "face_count": int(len(atlas.faces)),
                "texture_resolution": resolution,
                "bake_resolution": size,
                "visible_fraction": round(visible, 4),
                "unseen_fill": "nearest seen surface colour in 3-D (voxel grid, lightly blurred)",
                "mask_method": mask.method,
                "uv_coverage": round(texels.coverage, 4),
                "seed": params.get("seed"),
                "deterministic": True,
                "approximate": True,
            },
        )
