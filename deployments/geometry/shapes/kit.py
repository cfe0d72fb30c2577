"""Primitives for the parametric catalogue: closed solids placed in a Y-up, metre frame.

Every primitive is a watertight trimesh solid; a family is a union of them (overlapping,
not booleaned), so each connected part of a result is closed and edge-manifold. Parts are
tagged "primary" (takes the prompt's colour and material) or "accent" (the family's
second material: tyres, a trunk, a handle). Proportions come from `Kit.u`, a seeded
random draw, so a seed gives the same shape every time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh
from trimesh.geometry import align_vectors

Vec = Sequence[float] | np.ndarray
_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
SECTIONS = 24


def _direction(axis: str | Vec) -> np.ndarray:
    vector = np.asarray(_AXES[axis] if isinstance(axis, str) else axis, dtype=np.float64)
    return vector / np.linalg.norm(vector)


class Kit:
    """Collects the parts of one shape; `build()` returns vertices, faces and face roles."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.parts: list[tuple[trimesh.Trimesh, str]] = []

    def u(self, low: float, high: float) -> float:
        """A proportion drawn uniformly from [low, high] (seeded)."""
        return float(self.rng.uniform(low, high))

    def choice(self, options: Sequence[int]) -> int:
        return int(options[int(self.rng.integers(len(options)))])

    def add(self, mesh: trimesh.Trimesh, role: str = "primary") -> trimesh.Trimesh:
        self.parts.append((mesh, role))
        return mesh

    def _place(
        self, mesh: trimesh.Trimesh, centre: Vec, axis: str | Vec = "z", role: str = "primary"
    ) -> trimesh.Trimesh:
        """Turn a Z-aligned primitive onto `axis` and move it to `centre`."""
        direction = _direction(axis)
        if not np.allclose(direction, (0.0, 0.0, 1.0)):
            mesh.apply_transform(align_vectors((0.0, 0.0, 1.0), direction))
        mesh.apply_translation(centre)
        return self.add(mesh, role)

    def box(self, size: Vec, centre: Vec, role: str = "primary") -> trimesh.Trimesh:
        mesh = trimesh.creation.box(extents=size)
        mesh.apply_translation(centre)
        return self.add(mesh, role)

    def cylinder(
        self,
        radius: float,
        height: float,
        centre: Vec,
        axis: str | Vec = "y",
        role: str = "primary",
        sections: int = SECTIONS,
    ) -> trimesh.Trimesh:
        mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
        return self._place(mesh, centre, axis, role)

    def cone(
        self,
        radius: float,
        height: float,
        base: Vec,
        axis: str | Vec = "y",
        role: str = "primary",
        sections: int = SECTIONS,
    ) -> trimesh.Trimesh:
        """A cone standing on `base`, tip `height` along `axis`."""
        mesh = trimesh.creation.cone(radius=radius, height=height, sections=sections)
        return self._place(mesh, base, axis, role)

    def sphere(
        self,
        radius: float,
        centre: Vec,
        scale: Vec = (1.0, 1.0, 1.0),
        role: str = "primary",
        subdivisions: int = 2,
    ) -> trimesh.Trimesh:
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
        mesh.apply_scale(scale)
        mesh.apply_translation(centre)
        return self.add(mesh, role)

    def capsule(
        self,
        radius: float,
        length: float,
        centre: Vec,
        axis: str | Vec = "y",
        role: str = "primary",
    ) -> trimesh.Trimesh:
        """A capsule whose straight part is `length` long, centred on `centre`."""
        mesh = trimesh.creation.capsule(height=length, radius=radius, count=[16, 8])
        return self._place(mesh, centre, axis, role)

    def between(
        self, start: Vec, end: Vec, radius: float, role: str = "primary"
    ) -> trimesh.Trimesh:
        """A cylinder from `start` to `end` (legs, limbs, struts), ends slightly rounded."""
        a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
        length = float(np.linalg.norm(b - a))
        return self.capsule(radius, max(length, 1e-6), (a + b) / 2.0, b - a, role)

    def torus(
        self,
        major: float,
        minor: float,
        centre: Vec,
        axis: str | Vec = "y",
        role: str = "primary",
    ) -> trimesh.Trimesh:
        mesh = trimesh.creation.torus(major, minor, major_sections=32, minor_sections=12)
        return self._place(mesh, centre, axis, role)

    def lathe(
        self,
        profile: Sequence[tuple[float, float]],
        centre: Vec = (0.0, 0.0, 0.0),
        role: str = "primary",
        sections: int = 32,
    ) -> trimesh.Trimesh:
        """A solid of revolution about Y from (radius, height) points, axis to axis."""
        points = [(0.0, profile[0][1]), *profile, (0.0, profile[-1][1])]
        mesh = trimesh.creation.revolve(np.asarray(points, dtype=np.float64), sections=sections)
        return self._place(mesh, centre, "y", role)

    def hull(self, points: np.ndarray | Sequence[Vec], role: str = "primary") -> trimesh.Trimesh:
        """Convex hull of points: blades, wedges, car bodies, rocks."""
        mesh = trimesh.convex.convex_hull(np.asarray(points, dtype=np.float64))
        return self.add(mesh, role)

    def prism(
        self,
        outline: Sequence[tuple[float, float]],
        depth: float,
        z: float = 0.0,
        role: str = "primary",
    ) -> trimesh.Trimesh:
        """Hull of a convex X/Y outline extruded `depth` along Z around `z`."""
        pts = [(x, y, z + s * depth / 2.0) for x, y in outline for s in (-1.0, 1.0)]
        return self.hull(pts, role)

    def build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices (n, 3), faces (m, 3), role per face (m,) with 0 primary, 1 accent.

        Each part is merged on its own (closing seams the primitives leave open), so
        parts never share vertices and every part stays a closed manifold.
        """
        vertices, faces, roles, offset = [], [], [], 0
        taken: set[bytes] = set()
        for mesh, role in self.parts:
            part = mesh.copy()
            part.merge_vertices()
            part.update_faces(part.nondegenerate_faces())
            part.remove_unreferenced_vertices()
            part.fix_normals()
            _avoid_shared_points(part, taken)
            vertices.append(part.vertices)
            faces.append(part.faces + offset)
            roles.append(np.full(len(part.faces), 0 if role == "primary" else 1))
            offset += len(part.vertices)
        return np.vstack(vertices), np.vstack(faces), np.concatenate(roles)


def _keys(points: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.round(points, 8)]


def _avoid_shared_points(part: trimesh.Trimesh, taken: set[bytes]) -> None:
    """Shrink a part a hair about its centre if it would share a point with an earlier one:
    a reader that welds coincident vertices would otherwise join two closed parts there
    into a non-manifold edge."""
    for _ in range(4):
        if taken.isdisjoint(_keys(part.vertices)):
            break
        centre = part.vertices.mean(axis=0)
        part.vertices = centre + (part.vertices - centre) * 0.9995
    taken.update(_keys(part.vertices))
