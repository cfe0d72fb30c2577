"""Request bodies of the job routes, with the spec's field names, defaults and ranges."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_B64 = "Base64 data (a `data:` URL prefix is accepted)"
_PATH = "Server path; refused unless the server allows directories for inputs"
_FID = "File id from the upload routes (recommended)"


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_format: str | None = Field(
        None, description="Output format; the feature's default if unset"
    )
    model_preference: str | None = Field(
        None, description="Model id; the feature's default if unset"
    )


class MeshInput(BaseModel):
    mesh_path: str | None = Field(None, description=_PATH)
    mesh_base64: str | None = Field(None, description=_B64)
    mesh_file_id: str | None = Field(None, description=_FID)


class ImageInput(BaseModel):
    image_path: str | None = Field(None, description=_PATH)
    image_base64: str | None = Field(None, description=_B64)
    image_file_id: str | None = Field(None, description=_FID)


class TextureImageInput(BaseModel):
    texture_image_path: str | None = Field(None, description=_PATH)
    texture_image_base64: str | None = Field(None, description=_B64)
    texture_image_file_id: str | None = Field(None, description=_FID)


Prompt = Field(..., min_length=1, max_length=2000, description="What to generate")
TextureResolution = Field(1024, ge=256, le=4096, description="Texture side in pixels")
Seed = Field(None, ge=0, le=2**31 - 1, description="Random seed for reproducibility")


class TextToRawMeshRequest(JobRequest):
    text_prompt: str = Prompt
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "text_prompt": "A red sports car",
                "output_format": "glb",
                "model_preference": "trellis_text_to_raw_mesh",
            }
        }
    )


class TextToTexturedMeshRequest(JobRequest):
    text_prompt: str = Prompt
    texture_prompt: str | None = Field(None, max_length=2000, description="Texture description")
    texture_resolution: int = TextureResolution
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "text_prompt": "A red sports car",
                "texture_prompt": "shiny metallic paint",
                "texture_resolution": 1024,
                "output_format": "glb",
                "model_preference": "trellis_text_to_textured_mesh",
            }
        }
    )


class TextMeshPaintingRequest(JobRequest, MeshInput):
    text_prompt: str = Prompt
    texture_resolution: int = TextureResolution
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "text_prompt": "rusty metal texture",
                "mesh_file_id": "file_0123456789abcdef",
                "texture_resolution": 1024,
                "output_format": "glb",
            }
        }
    )


class ImageToRawMeshRequest(JobRequest, ImageInput):
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "image_file_id": "file_0123456789abcdef",
                "output_format": "glb",
                "model_preference": "trellis_image_to_raw_mesh",
            }
        }
    )


class ImageToTexturedMeshRequest(JobRequest, ImageInput, TextureImageInput):
    texture_resolution: int = TextureResolution
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "image_file_id": "file_0123456789abcdef",
                "texture_resolution": 1024,
                "output_format": "glb",
                "model_preference": "trellis_image_to_textured_mesh",
            }
        }
    )


class ImageMeshPaintingRequest(JobRequest, ImageInput, MeshInput):
    texture_resolution: int = TextureResolution
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "image_file_id": "file_0123456789abcdef",
                "mesh_file_id": "file_fedcba9876543210",
                "texture_resolution": 1024,
                "output_format": "glb",
                "model_preference": "trellis_image_mesh_painting",
            }
        }
    )


class PartCompletionRequest(JobRequest, MeshInput):
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mesh_file_id": "file_0123456789abcdef",
                "output_format": "glb",
                "model_preference": "holopart_part_completion",
            }
        }
    )


class SegmentMeshRequest(JobRequest, MeshInput):
    num_parts: int = Field(8, ge=2, le=32, description="Number of parts (2-32)")
    seed: int | None = Seed
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mesh_file_id": "file_0123456789abcdef",
                "num_parts": 8,
                "output_format": "glb",
                "model_preference": "partfield_mesh_segmentation",
            }
        }
    )


class GenerateRigRequest(JobRequest, MeshInput):
    rig_mode: Literal["skeleton", "skin", "full"] = Field("skeleton", description="What to build")
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mesh_file_id": "file_0123456789abcdef",
                "rig_mode": "skeleton",
                "output_format": "fbx",
                "model_preference": "unirig_auto_rig",
            }
        }
    )


class RetopologizeRequest(JobRequest, MeshInput):
    target_vertex_count: int | None = Field(
        None, ge=4, le=2_000_000, description="Vertex target; the model's default if unset"
    )
    seed: int | None = Field(42, ge=0, le=2**31 - 1, description="Random seed")
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mesh_file_id": "file_0123456789abcdef",
                "target_vertex_count": None,
                "output_format": "obj",
                "seed": 42,
                "model_preference": "fastmesh_v1k_retopology",
            }
        }
    )


class UnwrapMeshRequest(JobRequest, MeshInput):
    distortion_threshold: float = Field(1.25, ge=1.0, le=5.0, description="Largest distortion")
    pack_method: Literal["blender", "uvpackmaster", "none"] = Field("blender")
    save_individual_parts: bool = Field(True, description="Also store each part")
    save_visuals: bool = Field(False, description="Also store visualisation images")
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mesh_file_id": "file_0123456789abcdef",
                "distortion_threshold": 1.25,
                "pack_method": "blender",
                "save_individual_parts": True,
                "save_visuals": False,
                "output_format": "obj",
                "model_preference": "partuv_uv_unwrapping",
            }
        }
    )


class JobQueued(BaseModel):
    job_id: str
    status: str
    message: str
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "job_id": "job_0123456789abcdef",
                "status": "queued",
                "message": "Mesh segmentation job queued successfully",
            }
        }
    )


INPUT_FIELDS = frozenset(
    f"{slot}_{s}"
    for slot in ("mesh", "image", "texture_image")
    for s in ("path", "base64", "file_id")
)
