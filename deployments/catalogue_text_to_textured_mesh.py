"""Text to textured mesh by catalogue match, with procedural PBR textures baked from the
colours and materials named in the prompts (CPU; not a generative model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, ModelOutput, ModelSpec
from deployments.catalogue_text_to_raw_mesh import (
    CATALOGUE_DETAILS,
    CATALOGUE_METHOD,
    MESH_FORMATS,
    CatalogueModel,
    prompt_of,
)

DEFAULT_RESOLUTION = 1024


def texture_files(baked: Any) -> dict[str, Any]:
    files = {"texture_basecolor": baked.base_color}
    if baked.metallic_roughness is not None:
        files["texture_metallic_roughness"] = baked.metallic_roughness
    return files


class CatalogueTextToTexturedMesh(CatalogueModel):
    spec = ModelSpec(
        model_id="catalogue_text_to_textured_mesh",
        feature="text_to_textured_mesh",
        description="Catalogue shape matched from the prompt, with procedural PBR textures "
        "from the colours and materials named (CPU; not a generative model)",
        method=CATALOGUE_METHOD + "; procedural materials baked on xatlas UVs",
        inputs=(),
        output_formats=MESH_FORMATS,
        default_params={
            "output_format": "glb",
            "texture_resolution": DEFAULT_RESOLUTION,
            "seed": 0,
        },
        details=CATALOGUE_DETAILS,
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.catalogue import bake_look, info, look_for, seed_of, shape_for
        from deployments.geometry.pbr import mesh_outputs
        from deployments.geometry.texels import bake_size

        text = prompt_of(params)
        texture_prompt = str(params.get("texture_prompt") or "").strip()
        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        seed = seed_of(params)
        ctx.progress("matching the prompt", 0.05)
        match, shape = shape_for(text, seed)
        look = look_for([texture_prompt, text], match.family)
        ctx.progress("unwrapping and baking materials", 0.2)
        baked = bake_look(shape.vertices, shape.faces, shape.roles, look, resolution, seed)
        ctx.progress("writing output", 0.85)
        return ModelOutput(
            files=mesh_outputs(
                baked.mesh, params["output_format"], "catalogue_textured_mesh", texture_files(baked)
            ),
            preview=baked.mesh,
            generation_info={
                **info(match, look, seed),
                "text_prompt": text,
                "texture_prompt": texture_prompt or None,
                "texture_resolution": resolution,
                "bake_resolution": bake_size(resolution),
                "uv_coverage": round(baked.uv_coverage, 4),
                "vertex_count": int(len(baked.mesh.vertices)),
                "face_count": int(len(baked.mesh.faces)),
            },
        )
