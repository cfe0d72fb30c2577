"""Text to shape without a generative model: catalogue match, seeded build, material bake.

Shared by the three text models. `generation_info` always says what was done: which
family the prompt matched, how well, and which colours and materials were understood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh

from deployments.geometry.pbr import Surface, flat_mesh, metallic_roughness_map, textured_mesh
from deployments.geometry.procedural import shade
from deployments.geometry.prompt import FamilyMatch, Look, match_family, resolve_look
from deployments.geometry.shapes import FAMILIES, Shape, build_shape
from deployments.geometry.texels import bake_size, compose, sample_texels, unwrap, upscale

METHOD = "parametric catalogue match, not a generative model"
DEFAULT_PAINT_MATERIAL = "paint"


@dataclass(frozen=True)
class Baked:
    mesh: trimesh.Trimesh
    base_color: np.ndarray
    metallic_roughness: np.ndarray | None
    uv_coverage: float


def seed_of(params: dict[str, Any]) -> int:
    seed = params.get("seed")
    return 0 if seed is None else int(seed)


def shape_for(prompt: str, seed: int) -> tuple[FamilyMatch, Shape]:
    match = match_family(prompt)
    return match, build_shape(match.family, seed)


def look_for(prompts: list[str], family: str | None) -> Look:
    if family is None:
        return resolve_look(prompts, DEFAULT_PAINT_MATERIAL, DEFAULT_PAINT_MATERIAL)
    fam = FAMILIES[family]
    return resolve_look(prompts, fam.primary, fam.accent)


def flat_parts(shape: Shape, look: Look) -> trimesh.Scene:
    """Untextured result: one node per role, each with its uniform PBR factors."""
    scene = trimesh.Scene()
    for role, surface in ((0, look.primary), (1, look.accent)):
        chosen = shape.roles == role
        if not chosen.any():
            continue
        part = trimesh.Trimesh(shape.vertices, shape.faces[chosen], process=False)
        part.remove_unreferenced_vertices()
        pbr = Surface(surface.color, surface.metallic, surface.roughness)
        name = f"{shape.family}_{'body' if role == 0 else 'accent'}"
        scene.add_geometry(flat_mesh(part.vertices, part.faces, pbr, name), geom_name=name)
    return scene


def preview_of(scene: trimesh.Scene) -> trimesh.Scene:
    """A copy with face colours from each part's base colour, for the thumbnail renderer
    (which reads face, vertex or texture colours, not material factors)."""
    preview = trimesh.Scene()
    for name, geom in scene.geometry.items():
        rgba = np.asarray(geom.visual.material.baseColorFactor, dtype=np.uint8)
        colors = np.tile(rgba, (len(geom.faces), 1))
        copy = trimesh.Trimesh(geom.vertices, geom.faces, face_colors=colors, process=False)
        preview.add_geometry(copy, geom_name=name)
    return preview


def bake_look(
    vertices: np.ndarray,
    faces: np.ndarray,
    roles: np.ndarray,
    look: Look,
    resolution: int,
    seed: int,
) -> Baked:
    """xatlas UVs, then the procedural materials evaluated at every texel's surface point
    (baked at up to 2048² and upsampled to the requested size above that)."""
    size = bake_size(resolution)
    atlas = unwrap(vertices, faces, size)
    texels = sample_texels(atlas, size)
    q = (texels.position - vertices.min(axis=0)) / (
        float(np.linalg.norm(np.ptp(vertices, axis=0))) or 1.0
    )
    texel_roles = roles[texels.face]  # xatlas keeps the input's face order
    color = np.zeros((len(q), 3))
    metal, rough = np.zeros(len(q)), np.zeros(len(q))
    for role, surface in ((0, look.primary), (1, look.accent)):
        chosen = texel_roles == role
        if not chosen.any():
            continue
        layer = shade(
            surface.pattern, surface.color, surface.metallic, surface.roughness,
            q[chosen], texels.normal[chosen], seed=seed + role, worn=look.worn,
        )  # fmt: skip
        color[chosen], metal[chosen], rough[chosen] = layer.color, layer.metallic, layer.roughness
    base = upscale(compose(texels, color * 255.0), resolution)
    uniform = np.ptp(metal) < 0.01 and np.ptp(rough) < 0.01
    mr = None
    if not uniform:
        mr = compose(texels, metallic_roughness_map(metal, rough).astype(np.float64))
        mr = upscale(mr, resolution)
    m0 = float(metal[0]) if len(metal) else 0.0
    r0 = float(rough[0]) if len(rough) else 0.8
    mesh = textured_mesh(atlas.vertices, atlas.faces, atlas.uv, base, m0, r0, mr)
    return Baked(mesh, base, mr, texels.coverage)


def info(match: FamilyMatch | None, look: Look, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": METHOD,
        "generative_model": False,
        "approximate": True,
        "seed": seed,
        "deterministic": True,
        "look": look.as_dict(),
    }
    if match is not None:
        out.update(
            matched_family=match.family,
            match_score=match.score,
            match_method=match.method,
            matched_words=match.matched,
            other_families_named=list(match.alternatives),
            catalogue_size=len(FAMILIES),
        )
        if match.method == "fallback":
            out["note"] = "no catalogue family matched the prompt; a generic rock form was used"
    return out
