"""The features of the API: names, the inputs they take and the formats they produce."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    input_formats: tuple[str, ...]
    output_formats: tuple[str, ...]
    default_output_format: str
    queued_message: str
    known_models: tuple[str, ...] = ()
    """Model ids the spec names for this feature; one not deployed falls back to a deployed one."""


IMAGE_IN = ("png", "jpg", "jpeg", "webp", "bmp", "tiff")
MESH_IN = ("obj", "glb", "gltf", "ply", "stl", "fbx")
MESH_OUT = ("obj", "glb", "ply", "fbx")

# fmt: off
_TABLE = [
    # name, description, inputs, outputs, default output, queued message, spec model ids
    ("text_to_raw_mesh", "Mesh from a text prompt", ("string",), MESH_OUT, "glb",
     "Text-to-mesh generation job queued successfully", ("trellis_text_to_raw_mesh",)),
    ("text_to_textured_mesh", "Textured mesh from a text prompt", ("string",), MESH_OUT, "glb",
     "Text-to-textured-mesh generation job queued successfully",
     ("trellis_text_to_textured_mesh",)),
    ("text_mesh_painting", "Texture an existing mesh from a text prompt", ("string", *MESH_IN),
     MESH_OUT, "glb", "Text-based mesh painting job queued successfully",
     ("trellis_text_mesh_painting", "trellis_text_to_textured_mesh")),
    ("image_to_raw_mesh", "Mesh from an image", IMAGE_IN, MESH_OUT, "glb",
     "Image-to-mesh generation job queued successfully", ("trellis_image_to_raw_mesh",)),
    ("image_to_textured_mesh", "Textured mesh from an image", IMAGE_IN, MESH_OUT, "glb",
     "Image-to-textured-mesh generation job queued successfully",
     ("trellis_image_to_textured_mesh",)),
    ("image_mesh_painting", "Texture an existing mesh from an image", (*IMAGE_IN, *MESH_IN),
     MESH_OUT, "glb", "Image-based mesh painting job queued successfully",
     ("trellis_image_mesh_painting",)),
    ("part_completion", "Complete missing parts of a mesh", MESH_IN, MESH_OUT, "glb",
     "Part completion job queued successfully", ("holopart_part_completion",)),
    ("mesh_segmentation", "Segment a mesh into parts", MESH_IN, ("glb", "json"), "glb",
     "Mesh segmentation job queued successfully", ("partfield_mesh_segmentation",)),
    ("auto_rig", "Skeleton and skinning weights for a mesh", ("obj", "glb", "fbx"),
     ("fbx", "glb"), "fbx", "Auto-rigging job queued successfully", ("unirig_auto_rig",)),
    ("retopology", "Rebuild a mesh with a target vertex count", MESH_IN, ("obj", "glb", "ply"),
     "obj", "Mesh retopology job queued successfully",
     ("fastmesh_v1k_retopology", "fastmesh_v4k_retopology")),
    ("uv_unwrapping", "UV charts and packing for a mesh", MESH_IN, ("obj", "glb"), "obj",
     "Mesh UV unwrapping job queued successfully", ("partuv_uv_unwrapping",)),
]

# fmt: on

FEATURES: dict[str, Feature] = {row[0]: Feature(*row) for row in _TABLE}
