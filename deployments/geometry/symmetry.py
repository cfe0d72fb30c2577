"""Reflective symmetry: the best mirror plane of a surface and how well it fits.

Candidates are planes through the area centroid normal to the three principal axes and
to the three coordinate axes (scanned and modelled assets are usually aligned). Each is
refined ICP-style: sample points are reflected, matched to the closest surface point, and the
plane is re-fitted to the matched pairs (the normal is the main direction of p - q, the
offset the mean of the midpoints), with the match radius shrinking each round.

score = share of the surface (by samples) whose mirror image lands within `tolerance` of
the surface with a normal that agrees (cos > 0.5). A complete, symmetric shape scores
near 1; a shape missing one arm of a symmetric pair scores about 1 - 2 x the arm's share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

SAMPLES = 3000
TOLERANCE = 0.01  # of the bounding-box diagonal
REFINE_ROUNDS = 8


@dataclass(frozen=True)
class Plane:
    normal: np.ndarray  # unit (3,)
    offset: float  # points x on the plane satisfy normal . x = offset
    score: float

    def reflect_points(self, points: np.ndarray) -> np.ndarray:
        return points - 2.0 * (points @ self.normal - self.offset)[:, None] * self.normal

    def reflect_vectors(self, vectors: np.ndarray) -> np.ndarray:
        return vectors - 2.0 * (vectors @ self.normal)[:, None] * self.normal

    def as_dict(self) -> dict[str, object]:
        return {
            "normal": [round(float(x), 5) for x in self.normal],
            "offset": round(float(self.offset), 6),
            "score": round(float(self.score), 4),
        }


class _Surface:
    """A mesh with an AABB tree for repeated closest-point queries (libigl)."""

    def __init__(self, mesh: trimesh.Trimesh) -> None:
        import igl

        self.vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
        self.normals = np.asarray(mesh.face_normals)
        self.tree = igl.AABB()
        self.tree.init(self.vertices, self.faces)

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Squared distance, face and closest point on the surface for each point."""
        result = self.tree.squared_distance(self.vertices, self.faces, points)
        return result[0], result[1], result[2]


def _score(
    plane: Plane, points: np.ndarray, normals: np.ndarray, surface: _Surface, radius: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Inlier share, the inlier mask and the surface point closest to each mirror image."""
    mirrored = np.ascontiguousarray(plane.reflect_points(points))
    squared, face, closest = surface.closest(mirrored)
    agree = np.einsum("ij,ij->i", plane.reflect_vectors(normals), surface.normals[face]) > 0.5
    inliers = (np.sqrt(squared) < radius) & agree
    return float(inliers.mean()), inliers, closest


def _refit(
    points: np.ndarray, matched: np.ndarray, inliers: np.ndarray, normal: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """Plane of the matched pairs (p, q): normal along p - q, through the midpoints."""
    p, q = points[inliers], matched[inliers]
    diff = p - q
    long = np.linalg.norm(diff, axis=1) > 1e-12
    if long.sum() < 3:
        return None
    diff = diff[long] * np.sign(diff[long] @ normal)[:, None]
    new = np.linalg.svd(diff, full_matrices=False)[2][0]
    new = new if new @ normal >= 0 else -new
    offset = float((((p + q) / 2.0) @ new).mean())
    return new, offset


def find_symmetry_plane(
    mesh: trimesh.Trimesh, samples: int = SAMPLES, tolerance: float = TOLERANCE, seed: int = 0
) -> Plane:
    """The best-scoring reflection plane of the surface (score 0 if there is none)."""
    diagonal = float(np.linalg.norm(mesh.extents))
    rng = np.random.default_rng(seed)
    points, face = trimesh.sample.sample_surface(mesh, samples, seed=rng)
    normals = mesh.face_normals[face]
    surface = _Surface(mesh)
    radius = tolerance * diagonal
    centre = points.mean(axis=0)
    axes = np.linalg.svd(points - centre, full_matrices=False)[2]
    best = Plane(np.array([1.0, 0.0, 0.0]), 0.0, 0.0)
    for axis in [*axes, *np.eye(3)]:
        plane = Plane(axis, float(axis @ centre), 0.0)
        for round_index in range(REFINE_ROUNDS):
            shrink = 4.0 * (1.0 - round_index / REFINE_ROUNDS) + 1.0
            _, inliers, matched = _score(plane, points, normals, surface, radius * shrink)
            fitted = _refit(points, matched, inliers, plane.normal)
            if fitted is None:
                break
            plane = Plane(fitted[0], fitted[1], 0.0)
        score, _, _ = _score(plane, points, normals, surface, radius)
        if score > best.score:
            best = Plane(plane.normal, plane.offset, score)
    return best
