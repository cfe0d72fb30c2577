"""Text mesh painting: the procedural material named in the prompt, baked onto new UVs of
the uploaded mesh (CPU; not a generative model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec
from deployments.catalogue_text_to_raw_mesh import MESH_FORMATS, prompt_of
from deployments.catalogue_text_to_textured_mesh import DEFAULT_RESOLUTION, texture_files


class CatalogueTextMeshPainting(Model):
    spec = ModelSpec(
        model_id="catalogue_text_mesh_painting",
        feature="text_mesh_painting",
        description="Paints the mesh with the procedural PBR material and colours named in "
        "the prompt (CPU; not a generative model)",
        method="prompt vocabulary to procedural PBR material, baked on xatlas UVs; "
        "not a generative model",
        inputs=("mesh",),
        output_formats=MESH_FORMATS,
        default_params={
            "output_format": "glb",
            "texture_resolution": DEFAULT_RESOLUTION,
            "seed": 0,
        },
        details={"device": "cpu", "generative": False},
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.catalogue import bake_look, info, look_for, seed_of
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh
        from deployments.geometry.pbr import mesh_outputs
        from deployments.geometry.texels import bake_size

        text = prompt_of(params)
        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        seed = seed_of(params)
        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        look = look_for([text], None)
        ctx.progress("unwrapping and baking the material", 0.2)
        roles = np.zeros(len(mesh.faces), dtype=np.int64)
        baked = bake_look(mesh.vertices, mesh.faces, roles, look, resolution, seed)
        ctx.progress("writing output", 0.85)
        return ModelOutput(
            files=mesh_outputs(
                baked.mesh, params["output_format"], "painted_mesh", texture_files(baked)
            ),
            preview=baked.mesh,
            generation_info={
                **info(None, look, seed),
                "text_prompt": text,
                "texture_resolution": resolution,
                "bake_resolution": bake_size(resolution),
                "uv_coverage": round(baked.uv_coverage, 4),
                "vertex_count": int(len(baked.mesh.vertices)),
                "face_count": int(len(baked.mesh.faces)),
            },
        )
