"""TRELLIS (microsoft/TRELLIS): text or image to 3D, and text or image painting of a mesh.

The six models of the family are served by one deployment and share the pipelines loaded
in their process: `TrellisImageTo3DPipeline` (TRELLIS-image-large) and
`TrellisTextTo3DPipeline` (TRELLIS-text-xlarge, whose decoders are those of image-large),
each loaded once by whichever model needs it first and freed when the last one unloads.

Mapping of the request onto upstream:
* text/image generation: `pipeline.run(prompt|image, seed, sampler params, formats)`; with a
  `texture_prompt` or a texture image the two stages run separately: the sparse structure
  from the prompt/image, the structured latent (appearance and fine detail) from the
  texture condition.
* text painting: `TrellisTextTo3DPipeline.run_variant` on the uploaded mesh; image painting:
  stage 2 of the image pipeline on the mesh's voxels. Both bake the decoded Gaussians onto
  the uploaded geometry with `postprocessing_utils.to_glb(simplify=0, fill_holes=False)` and
  return it in the input's frame.
* `texture_resolution` -> `to_glb(texture_size=...)`.

This module holds the six model classes and their specs; the base class and pipeline cache
are in `trellis_pipelines`, generation in `trellis_generation`, painting in `trellis_painting`.
"""

from __future__ import annotations

from typing import Any

from deployments.base import ModelSpec
from deployments.trellis_generation import _ImageGeneration, _TextGeneration
from deployments.trellis_painting import VOXEL_RESOLUTION, _ImagePainting, _TextPainting
from deployments.trellis_pipelines import (
    DEFAULT_RESOLUTION,
    DEFAULT_SIMPLIFY,
    IMAGE_WEIGHTS,
    PIPELINES,
    TEXT_WEIGHTS,
    UNUSED_DECODERS,
    UPSTREAM,
    Y_UP,
    _Trellis,
)

__all__ = [
    "DEFAULT_RESOLUTION",
    "DEFAULT_SIMPLIFY",
    "IMAGE_WEIGHTS",
    "MESH_FORMATS",
    "PIPELINES",
    "TEXT_WEIGHTS",
    "UNUSED_DECODERS",
    "UPSTREAM",
    "VOXEL_RESOLUTION",
    "VRAM_NOTE",
    "Y_UP",
    "_Trellis",
    "TrellisImageMeshPainting",
    "TrellisImageToRawMesh",
    "TrellisImageToTexturedMesh",
    "TrellisTextMeshPainting",
    "TrellisTextToRawMesh",
    "TrellisTextToTexturedMesh",
]

MESH_FORMATS = ("glb", "obj", "ply", "fbx")

VRAM_NOTE = (
    "declared from 3DAIGC-API's torch.cuda.max_memory_allocated() on an RTX 4090, which "
    "leaves out the CUDA context and non-PyTorch allocations: allow 1-2 GB of headroom "
    "until benchmarks/vram_probe.py has measured it"
)


# -- the six models -----------------------------------------------------------------------


def _spec(
    model_id: str,
    feature: str,
    description: str,
    method: str,
    vram_mb: int,
    inputs: tuple[str, ...],
    weights: str,
    textured: bool,
) -> ModelSpec:
    defaults: dict[str, Any] = {"output_format": "glb"}
    details: dict[str, Any] = {
        "device": "cuda",
        "upstream": UPSTREAM,
        "licence": "MIT",
        "weights": weights,
        "vram_note": VRAM_NOTE,
        "deployment": "shares one loaded pipeline set with the other TRELLIS models of its process",
        "sampler_params": "pipeline.json defaults unless the deployment options set "
        "sparse_structure_sampler_params / slat_sampler_params",
    }
    if textured:
        defaults["texture_resolution"] = DEFAULT_RESOLUTION
        details["texture_resolution"] = [256, 4096]
    return ModelSpec(
        model_id=model_id,
        feature=feature,
        description=description,
        method=method,
        vram_mb=vram_mb,
        ram_mb=16384 if weights.startswith(TEXT_WEIGHTS) else 12288,
        load_time_s=60.0 if weights.startswith(TEXT_WEIGHTS) else 45.0,
        inputs=inputs,
        output_formats=MESH_FORMATS,
        default_params=defaults,
        details=details,
    )


_TEXT_DECODERS = f"{TEXT_WEIGHTS} (+ the decoders of {IMAGE_WEIGHTS})"


class TrellisTextToRawMesh(_TextGeneration):
    consumed = ("text_prompt", "seed")
    spec = _spec(
        "trellis_text_to_raw_mesh",
        "text_to_raw_mesh",
        "TRELLIS text-to-3D (text-xlarge): untextured mesh",
        "TRELLIS rectified-flow transformers (sparse structure, then structured latent), "
        "FlexiCubes mesh decoder; decimated and hole-filled as upstream's to_glb",
        11776,
        (),
        _TEXT_DECODERS,
        textured=False,
    )


class TrellisTextToTexturedMesh(_TextGeneration):
    textured = True
    consumed = ("text_prompt", "texture_prompt", "texture_resolution", "seed")
    spec = _spec(
        "trellis_text_to_textured_mesh",
        "text_to_textured_mesh",
        "TRELLIS text-to-3D (text-xlarge): mesh with a baked PBR base-colour texture",
        "TRELLIS rectified-flow transformers; mesh + 3D Gaussians decoded, texture baked "
        "from Gaussian renders by upstream's to_glb; a texture_prompt conditions stage 2",
        11776,
        (),
        _TEXT_DECODERS,
        textured=True,
    )


class TrellisTextMeshPainting(_TextPainting):
    consumed = ("text_prompt", "texture_resolution", "seed")
    spec = _spec(
        "trellis_text_mesh_painting",
        "text_mesh_painting",
        "TRELLIS text-guided painting of an uploaded mesh (text-xlarge run_variant)",
        "TRELLIS run_variant: structured latent sampled on the mesh's voxels from the "
        "prompt, Gaussians baked onto the uploaded geometry by to_glb",
        8192,
        ("mesh",),
        _TEXT_DECODERS,
        textured=True,
    )


class TrellisImageToRawMesh(_ImageGeneration):
    consumed = ("seed",)
    spec = _spec(
        "trellis_image_to_raw_mesh",
        "image_to_raw_mesh",
        "TRELLIS image-to-3D (image-large): untextured mesh",
        "TRELLIS rectified-flow transformers on DINOv2 features, FlexiCubes mesh decoder; "
        "decimated and hole-filled as upstream's to_glb",
        11776,
        ("image",),
        IMAGE_WEIGHTS,
        textured=False,
    )


class TrellisImageToTexturedMesh(_ImageGeneration):
    textured = True
    consumed = ("texture_resolution", "seed")
    spec = _spec(
        "trellis_image_to_textured_mesh",
        "image_to_textured_mesh",
        "TRELLIS image-to-3D (image-large): mesh with a baked PBR base-colour texture",
        "TRELLIS rectified-flow transformers; texture baked from decoded 3D Gaussians by "
        "upstream's to_glb; a texture image conditions stage 2",
        11776,
        ("image", "texture_image"),
        IMAGE_WEIGHTS,
        textured=True,
    )


class TrellisImageMeshPainting(_ImagePainting):
    consumed = ("texture_resolution", "seed")
    spec = _spec(
        "trellis_image_mesh_painting",
        "image_mesh_painting",
        "TRELLIS image-guided painting of an uploaded mesh (image-large, stage 2 only)",
        "TRELLIS structured latent sampled on the mesh's voxels from the image, Gaussians "
        "baked onto the uploaded geometry by to_glb",
        12288,
        ("image", "mesh"),
        IMAGE_WEIGHTS,
        textured=True,
    )
