"""Model ids to implementation classes, imported lazily (specs are cheap, models are not)."""

from __future__ import annotations

import importlib
from functools import cache

from deployments.base import Model, ModelSpec

# One module per model, named after its model id: (model id, class name).
_MODELS = [
    ("quadric_retopology", "QuadricRetopology"),
    ("instant_meshes_retopology", "InstantMeshesRetopology"),
    ("spectral_mesh_segmentation", "SpectralSegmentation"),
    ("sleep_mesh_segmentation", "SleepSegmentation"),
    ("xatlas_uv_unwrapping", "XatlasUvUnwrapping"),
    ("fairing_part_completion", "FairingPartCompletion"),
    ("heat_auto_rig", "HeatAutoRig"),
    ("silhouette_image_to_raw_mesh", "SilhouetteImageToRawMesh"),
    ("silhouette_image_to_textured_mesh", "SilhouetteImageToTexturedMesh"),
    ("projection_image_mesh_painting", "ProjectionImageMeshPainting"),
    ("catalogue_text_to_raw_mesh", "CatalogueTextToRawMesh"),
    ("catalogue_text_to_textured_mesh", "CatalogueTextToTexturedMesh"),
    ("catalogue_text_mesh_painting", "CatalogueTextMeshPainting"),
]
# Models living in a module shared with their upstream family: (module, model id, class).
_FAMILY_MODELS: list[tuple[str, str, str]] = [
    # -- simulated GPU models (tests and demos of the VRAM scheduler)
    ("simulated_gpu_mesh_segmentation", "gpu_sim_large_mesh_segmentation", "SimulatedGpuLarge"),
    ("simulated_gpu_mesh_segmentation", "gpu_sim_medium_mesh_segmentation", "SimulatedGpuMedium"),
    ("simulated_gpu_mesh_segmentation", "gpu_sim_small_mesh_segmentation", "SimulatedGpuSmall"),
    ("simulated_gpu_mesh_segmentation", "gpu_sim_huge_mesh_segmentation", "SimulatedGpuHuge"),
    # -- TRELLIS family
    ("trellis", "trellis_text_to_raw_mesh", "TrellisTextToRawMesh"),
    ("trellis", "trellis_text_to_textured_mesh", "TrellisTextToTexturedMesh"),
    ("trellis", "trellis_text_mesh_painting", "TrellisTextMeshPainting"),
    ("trellis", "trellis_image_to_raw_mesh", "TrellisImageToRawMesh"),
    ("trellis", "trellis_image_to_textured_mesh", "TrellisImageToTexturedMesh"),
    ("trellis", "trellis_image_mesh_painting", "TrellisImageMeshPainting"),
    # -- other upstream adapters
    ("holopart_part_completion", "holopart_part_completion", "HoloPartPartCompletion"),
    ("partfield_mesh_segmentation", "partfield_mesh_segmentation", "PartFieldSegmentation"),
    ("unirig_auto_rig", "unirig_auto_rig", "UniRigAutoRig"),
    ("fastmesh_retopology", "fastmesh_v1k_retopology", "FastMeshV1KRetopology"),
    ("fastmesh_retopology", "fastmesh_v4k_retopology", "FastMeshV4KRetopology"),
    ("partuv_uv_unwrapping", "partuv_uv_unwrapping", "PartUvUnwrapping"),
]
MODEL_CLASSES: dict[str, str] = {mid: f"deployments.{mid}:{cls}" for mid, cls in _MODELS}
MODEL_CLASSES.update({mid: f"deployments.{mod}:{cls}" for mod, mid, cls in _FAMILY_MODELS})


class UnknownModel(KeyError):
    pass


@cache
def model_class(model_id: str) -> type[Model]:
    try:
        target = MODEL_CLASSES[model_id]
    except KeyError:
        raise UnknownModel(model_id) from None
    module, _, name = target.partition(":")
    cls: type[Model] = getattr(importlib.import_module(module), name)
    return cls


def model_spec(model_id: str) -> ModelSpec:
    return model_class(model_id).spec
