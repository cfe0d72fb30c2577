"""PBR metallic-roughness meshes for glTF output, and the texture files beside them.

trimesh writes a `PBRMaterial` as a core glTF 2.0 material (baseColorTexture,
metallicRoughnessTexture, factors), which the Khronos validator accepts with no errors.
OBJ and PLY carry the UVs but not the images, so models also return the textures as PNG
files next to the mesh.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from deployments.base import OutputFile


@dataclass(frozen=True)
class Surface:
    """Uniform PBR parameters: linear-agnostic sRGB base colour in 0..1 and the factors."""

    base_color: tuple[float, float, float]
    metallic: float
    roughness: float

    def as_dict(self) -> dict[str, object]:
        return {
            "base_color_rgb": [round(c, 3) for c in self.base_color],
            "metallic": round(self.metallic, 3),
            "roughness": round(self.roughness, 3),
        }


def flat_mesh(
    vertices: np.ndarray, faces: np.ndarray, surface: Surface | None = None, name: str = "mesh"
) -> trimesh.Trimesh:
    """An untextured mesh, with a uniform PBR material when `surface` is given."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if surface is not None:
        rgba = [*surface.base_color, 1.0]
        material = PBRMaterial(
            name=f"{name}_material",
            baseColorFactor=[int(round(c * 255)) for c in rgba],
            metallicFactor=float(surface.metallic),
            roughnessFactor=float(surface.roughness),
        )
        mesh.visual = TextureVisuals(material=material)
    return mesh


def textured_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    uv: np.ndarray,
    base_color: np.ndarray,
    metallic: float = 0.0,
    roughness: float = 0.8,
    metallic_roughness: np.ndarray | None = None,
    name: str = "mesh",
) -> trimesh.Trimesh:
    """A mesh with UVs and a baseColor texture (plus an optional metallicRoughness map,
    G = roughness, B = metallic, as glTF defines; the factors then multiply it)."""
    material = PBRMaterial(
        name=f"{name}_material",
        baseColorTexture=Image.fromarray(np.ascontiguousarray(base_color[..., :3]), "RGB"),
        metallicFactor=1.0 if metallic_roughness is not None else float(metallic),
        roughnessFactor=1.0 if metallic_roughness is not None else float(roughness),
        metallicRoughnessTexture=(
            Image.fromarray(np.ascontiguousarray(metallic_roughness), "RGB")
            if metallic_roughness is not None
            else None
        ),
    )
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.visual = TextureVisuals(uv=np.asarray(uv, dtype=np.float64), material=material)
    return mesh


def png_bytes(image: np.ndarray) -> bytes:
    """Deterministic PNG bytes of an (h, w, 3) uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def metallic_roughness_map(metallic: np.ndarray, roughness: np.ndarray) -> np.ndarray:
    """Per-texel values in 0..1 to glTF's packed (R unused, G roughness, B metallic) map."""
    out = np.zeros((*metallic.shape, 3), dtype=np.uint8)
    out[..., 1] = np.clip(np.round(roughness * 255), 0, 255)
    out[..., 2] = np.clip(np.round(metallic * 255), 0, 255)
    return out


EMBEDS_TEXTURES = ("glb", "gltf")


def mesh_outputs(
    obj: trimesh.Trimesh | trimesh.Scene,
    fmt: str,
    stem: str,
    textures: dict[str, np.ndarray] | None = None,
) -> list[OutputFile]:
    """The primary mesh file, plus each texture as a PNG where the format cannot embed it."""
    from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh

    files = [OutputFile(f"{stem}.{fmt}", export_mesh(obj, fmt), CONTENT_TYPES[fmt], primary=True)]
    if fmt not in EMBEDS_TEXTURES:
        for name, image in (textures or {}).items():
            files.append(OutputFile(f"{name}.png", png_bytes(image), CONTENT_TYPES["png"]))
    return files
