"""Symmetry-based completion: mirror what the other side has and this side lacks.

Given a mirror plane (symmetry.py), every face of the input is reflected; where its
mirror image lies far from the input surface, the input is missing that piece. Such
faces are grouped into connected clusters, and a cluster is taken as missing geometry
only when its mirror image is outside the shape, it is large enough, and it rims an open
boundary of the input (>= 95% of the hole's boundary within reach): a part cut off a
symmetric shape leaves a hole exactly where the mirrored copy attaches. An asymmetric but
closed detail (a turned head, a prop in one hand) has no hole next to it and is left
alone, and a hole that the mirror image merely touches is only faired.

The completed surface is reconstructed from a triangle soup (the input faces, the faired
patches of holes that no mirrored cluster covers, and the mirrored clusters, overlapping
their seams by a few face rings). Inside is where the soup's generalised winding number
(Jacobson et al. 2013; libigl's fast winding number, Barill et al. 2018) exceeds 0.5 in
magnitude; the field handed to marching cubes (scikit-image) is the exact distance to
the soup near it, signed by that test, so the surface comes out smooth, not in voxel
steps. The winding number shrugs off the overlaps and small gaps of such a soup and needs
no point normals. Screened Poisson, as in the reference, would need open3d (about 1 GB
with its dependencies plus a system library), which stays out of the default install;
libigl (MPL-2) and scikit-image (BSD) are already used here. The result is closed by
construction but re-sampled: detail under about a grid cell (RESOLUTION cells along the
longest side) is smoothed away, and the caller decimates it back to the input's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from deployments.geometry.symmetry import Plane

RESOLUTION = 128
MISSING_DISTANCE = 2.0  # x tolerance: mirror image farther than this from the surface
ATTACH_DISTANCE = 4.0  # x tolerance: a cluster this close to a hole attaches to it
MIN_CLUSTER_SHARE = 0.01  # of the surface area
ATTACH_SHARE = 0.95  # of a hole's boundary vertices
SEAM_RINGS = 2


@dataclass
class MirrorPlan:
    faces: np.ndarray  # input faces whose mirror images are added
    clusters: int
    added_area_share: float
    covered_holes: list[int]  # indices of holes the mirrored clusters attach to


def _face_graph(faces: np.ndarray, selected: np.ndarray) -> sparse.csr_matrix:
    mesh = trimesh.Trimesh(np.zeros((int(faces.max()) + 1, 3)), faces, process=False)
    pairs = mesh.face_adjacency
    keep = selected[pairs[:, 0]] & selected[pairs[:, 1]]
    pairs = pairs[keep]
    n = len(faces)
    return sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))


def _dilate(faces: np.ndarray, selected: np.ndarray, rings: int) -> np.ndarray:
    out = selected.copy()
    for _ in range(rings):
        vertices = np.unique(faces[out])
        out |= np.isin(faces, vertices).any(axis=1)
    return out


def _attached_holes(
    image: np.ndarray, loops: list[np.ndarray], vertices: np.ndarray, reach: float
) -> list[int]:
    """Holes that the mirrored cluster `image` closes: most of the hole's boundary lies
    within `reach` of it (a missing part's mirror image rims the stump it grows from)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(image)
    found = []
    for h, loop in enumerate(loops):
        near = tree.query(vertices[loop])[0] < reach
        if near.mean() >= ATTACH_SHARE:
            found.append(h)
    return found


def plan_mirror(
    vertices: np.ndarray,
    faces: np.ndarray,
    plane: Plane,
    hole_loops: list[np.ndarray],
    tolerance: float,
) -> MirrorPlan | None:
    """Which input faces to mirror to complete the shape; None when nothing is missing.

    A face is missing on the other side when its mirror image is far from the surface
    and outside the shape (|winding number| < 0.5: mirror images that land inside the
    body are asymmetry, not absence). Clusters of such faces count when they cover at
    least MIN_CLUSTER_SHARE of the area and reach a hole.
    """
    import igl

    if not hole_loops:
        return None
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    tol = tolerance * float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    image = np.ascontiguousarray(plane.reflect_points(v[f].mean(axis=1)))
    squared = igl.point_mesh_squared_distance(image, v, f)[0]
    missing = np.sqrt(squared) > MISSING_DISTANCE * tol
    if not missing.any():
        return None
    missing[missing] = np.abs(igl.fast_winding_number(v, f, image[missing])) < 0.5
    count, label = connected_components(_face_graph(f, missing), directed=False)
    area = trimesh.triangles.area(v[f])
    cluster_area = np.bincount(label[missing], weights=area[missing], minlength=count)
    chosen = np.zeros(len(f), dtype=bool)
    covered: set[int] = set()
    clusters = 0
    for index in np.flatnonzero(cluster_area >= MIN_CLUSTER_SHARE * area.sum()):
        members = np.flatnonzero((label == index) & missing)
        grown = np.flatnonzero(_dilate(f, label == index, SEAM_RINGS))
        mirrored = plane.reflect_points(v[np.unique(f[grown])])
        near = _attached_holes(mirrored, hole_loops, v, ATTACH_DISTANCE * tol)
        if near:
            chosen[members] = True
            covered.update(near)
            clusters += 1
    if not clusters:
        return None
    chosen = _dilate(f, chosen, SEAM_RINGS)
    return MirrorPlan(
        faces=np.flatnonzero(chosen),
        clusters=clusters,
        added_area_share=float(area[chosen].sum() / area.sum()),
        covered_holes=sorted(covered),
    )


def winding_reconstruction(
    vertices: np.ndarray, faces: np.ndarray, resolution: int = RESOLUTION
) -> trimesh.Trimesh:
    """Closed surface around a triangle soup: inside where |winding number| > 0.5.

    The winding number is nearly a step function, so its own level set would come out in
    voxel steps; the field given to marching cubes is the distance to the soup (exact,
    within two cells), signed by the winding number, whose zero set is smooth.
    """
    import igl
    from skimage.measure import marching_cubes

    low, high = vertices.min(axis=0), vertices.max(axis=0)
    pitch = float((high - low).max()) / resolution
    low = low - 3 * pitch
    shape = np.ceil((high + 3 * pitch - low) / pitch).astype(int) + 1
    axes = [low[k] + pitch * np.arange(shape[k]) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    soup_v = np.ascontiguousarray(vertices, dtype=np.float64)
    soup_f = np.ascontiguousarray(faces, dtype=np.int64)
    inside = np.abs(igl.fast_winding_number(soup_v, soup_f, grid)) > 0.5
    band = 2.0 * pitch
    distance = igl.signed_distance(
        grid, soup_v, soup_f, igl.SIGNED_DISTANCE_TYPE_UNSIGNED, 0.0, band
    )[0]
    distance = np.where(np.isfinite(distance), np.minimum(distance, band), band)
    field = np.where(inside, -distance, distance).reshape(shape)
    points, tris, _, _ = marching_cubes(field, 0.0, spacing=(pitch, pitch, pitch))
    surface = trimesh.Trimesh(points + low, tris, process=False)
    surface.merge_vertices()
    surface.update_faces(surface.nondegenerate_faces())
    surface.remove_unreferenced_vertices()
    if surface.volume < 0:
        surface.invert()
    return surface


def mirrored_soup(
    vertices: np.ndarray,
    faces: np.ndarray,
    plane: Plane,
    plan: MirrorPlan,
    extra_faces: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Input faces + `extra_faces` (fill patches to keep) + mirrored faces, as one soup."""
    used, local = np.unique(faces[plan.faces], return_inverse=True)
    image = plane.reflect_points(vertices[used])
    mirrored = local.reshape(-1, 3)[:, ::-1] + len(vertices)  # reflection flips winding
    soup_faces = np.vstack([faces, extra_faces.reshape(-1, 3), mirrored])
    return np.vstack([vertices, image]), soup_faces.astype(np.int64)
