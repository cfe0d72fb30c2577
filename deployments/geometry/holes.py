"""Hole filling: boundary loops closed by a lofted patch, then faired (bi-Laplacian).

A flat lid reads as a hole with a lid on. Each hole here gets a disk patch instead: rings
that shrink from the boundary loop to its centroid (spaced at the loop's mean edge
length, each ring zipped to the next), so the patch has interior vertices at the density
of the surrounding surface. Their positions then minimise the bi-Laplacian energy with
every original vertex fixed (libigl `harmonic`, k = 2, cotangent weights), which makes
the patch continue the surrounding surface with matching tangents (Liepa 2003, without
the remeshing of his refinement step). Only the patches and the three rings of original
faces around them enter the solve, so cost follows the holes, not the mesh.

Loops are read from boundary half-edges (edges used by one face), so holes come out with
the winding of the faces around them. Loops that cannot be closed into a cycle (around
non-manifold or inconsistently wound edges) are reported and left open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

FAIR_RINGS = 3
MAX_PATCH_VERTICES = 20_000


@dataclass
class FillReport:
    loops_found: int = 0
    holes_filled: int = 0
    boundary_edges_before: int = 0
    boundary_edges_after: int = 0
    added_vertices: int = 0
    added_faces: int = 0
    open_chains: int = 0
    patches: list[np.ndarray] = field(default_factory=list)  # new face ids per filled hole
    loops: list[np.ndarray] = field(default_factory=list)  # boundary vertex ids per hole


def boundary_half_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (u, v) of faces whose undirected edge belongs to one face only."""
    half = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    key = np.sort(half, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return half[counts[inverse.reshape(-1)] == 1]


def remove_fins(faces: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop dangling triangles: two open edges and the third shared by more than two faces.

    Such a fin (a stray face on a non-manifold edge) leaves a boundary that is no loop, so
    nothing could close it. Returns the kept faces and how many were dropped.
    """
    dropped = 0
    while len(faces):
        key = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        per_edge = counts[inverse.reshape(-1)].reshape(-1, 3)
        fin = ((per_edge == 1).sum(axis=1) >= 2) & ((per_edge > 2).sum(axis=1) >= 1)
        if not fin.any():
            break
        faces = faces[~fin]
        dropped += int(fin.sum())
    return faces, dropped


def boundary_loops(faces: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Closed loops of boundary vertices in half-edge order, and the count of open chains."""
    half = boundary_half_edges(faces)
    outgoing: dict[int, list[int]] = {}
    for u, v in half.tolist():
        outgoing.setdefault(u, []).append(v)
    loops, chains = [], 0
    while outgoing:
        start = next(iter(outgoing))
        loop, current = [start], start
        while True:
            targets = outgoing.get(current)
            if not targets:
                chains += 1
                break
            nxt = targets.pop()
            if not targets:
                del outgoing[current]
            if nxt == start:
                loops.append(np.array(loop, dtype=np.int64))
                break
            loop.append(nxt)
            current = nxt
    return loops, chains


def _polyline_points(points: np.ndarray, count: int) -> np.ndarray:
    """`count` points at equal arc-length steps around a closed polyline, from points[0]."""
    closed = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.arange(count) / count * cum[-1]
    return np.column_stack([np.interp(targets, cum, closed[:, k]) for k in range(3)])


def _zip(outer: list[int], inner: list[int]) -> list[tuple[int, int, int]]:
    """Triangles between two rings (parameterised uniformly from index 0), outer first."""
    n_a, n_b = len(outer), len(inner)
    tris, i, j = [], 0, 0
    while i < n_a or j < n_b:
        if j == n_b or (i < n_a and (i + 1) / n_a <= (j + 1) / n_b):
            tris.append((outer[i % n_a], outer[(i + 1) % n_a], inner[j % n_b]))
            i += 1
        else:
            tris.append((outer[i % n_a], inner[(j + 1) % n_b], inner[j % n_b]))
            j += 1
    return tris


def loft_patch(
    positions: np.ndarray, ring: np.ndarray, first_new: int, spacing: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Disk patch closing `ring` (vertex ids, in the order the patch must run along it).

    Returns new vertex positions (ids from `first_new`) and triangles. Rings shrink
    towards the centroid by about one edge length each; the innermost closes with a fan.
    """
    points = positions[ring]
    n = len(ring)
    if n == 3:
        return np.empty((0, 3)), np.array([ring.tolist()], dtype=np.int64)
    centre = points.mean(axis=0)
    edge = float(np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1).mean())
    spacing = max(spacing or edge, 1e-12)
    radius = float(np.linalg.norm(points - centre, axis=1).mean())
    rings = max(int(round(radius / spacing)) - 1, 0)
    while rings and n * rings / 2 > MAX_PATCH_VERTICES:
        rings //= 2
    new_points: list[np.ndarray] = []
    tris: list[tuple[int, int, int]] = []
    outer, next_id = ring.tolist(), first_new
    for k in range(1, rings + 1):
        t = 1.0 - k / (rings + 1)
        count = max(int(round(n * t)), 3)
        if count == len(outer) == 3:
            break
        ring_points = centre + t * (_polyline_points(points, count) - centre)
        inner = list(range(next_id, next_id + count))
        new_points.append(ring_points)
        tris += _zip(outer, inner)
        outer, next_id = inner, next_id + count
    if len(outer) == 3:
        tris.append((outer[0], outer[1], outer[2]))
    else:
        new_points.append(centre[None])
        tris += [(outer[i], outer[(i + 1) % len(outer)], next_id) for i in range(len(outer))]
    return np.vstack(new_points) if new_points else np.empty((0, 3)), np.array(tris)


def neighbourhood_faces(faces: np.ndarray, seeds: np.ndarray, rings: int) -> np.ndarray:
    """Faces within `rings` vertex rings of the seed vertices."""
    n = int(faces.max()) + 1
    incidence = sparse.csr_matrix(
        (np.ones(faces.size), (np.repeat(np.arange(len(faces)), 3), faces.reshape(-1))),
        shape=(len(faces), n),
    )
    marked = np.zeros(n, dtype=bool)
    marked[seeds] = True
    for _ in range(rings):
        touched = np.flatnonzero(incidence @ marked)
        marked[faces[touched].reshape(-1)] = True
    return np.flatnonzero(incidence @ marked)


def fair_vertices(
    vertices: np.ndarray, faces: np.ndarray, free: np.ndarray, region: np.ndarray
) -> np.ndarray:
    """New positions for `free` vertices: bi-Laplacian fairing over the `region` faces,
    every other vertex of the region held fixed. Returns the updated vertex array."""
    import igl

    sub = faces[region]
    used, local = np.unique(sub, return_inverse=True)
    local = local.reshape(-1, 3)
    is_free = np.isin(used, free)
    fixed = np.flatnonzero(~is_free)
    solved = igl.harmonic(
        np.ascontiguousarray(vertices[used], dtype=np.float64),
        np.ascontiguousarray(local, dtype=np.int64),
        fixed.astype(np.int64),
        np.ascontiguousarray(vertices[used[fixed]], dtype=np.float64),
        2,
    )
    out = vertices.copy()
    if np.isfinite(solved).all():
        out[used[is_free]] = solved[is_free]
    return out


def fill_holes(
    vertices: np.ndarray, faces: np.ndarray, max_loop_edges: int | None = None
) -> tuple[np.ndarray, np.ndarray, FillReport]:
    """Close every boundary loop (up to `max_loop_edges` edges) with a faired patch."""
    report = FillReport()
    report.boundary_edges_before = len(boundary_half_edges(faces))
    loops, report.open_chains = boundary_loops(faces)
    report.loops_found = len(loops)
    new_vertices, new_faces = [vertices], [faces]
    next_id, next_face = len(vertices), len(faces)
    for loop in loops:
        if max_loop_edges is not None and len(loop) > max_loop_edges:
            continue
        points, tris = loft_patch(vertices, loop[::-1], next_id)
        new_vertices.append(points)
        new_faces.append(tris)
        report.patches.append(np.arange(next_face, next_face + len(tris)))
        report.loops.append(loop)
        next_id += len(points)
        next_face += len(tris)
    out_vertices = np.vstack(new_vertices)
    out_faces = np.vstack(new_faces).astype(np.int64)
    report.holes_filled = len(report.patches)
    report.added_vertices = len(out_vertices) - len(vertices)
    report.added_faces = len(out_faces) - len(faces)
    if report.added_vertices:
        free = np.arange(len(vertices), len(out_vertices))
        seeds = np.concatenate([free, *report.loops])
        region = neighbourhood_faces(out_faces, seeds, FAIR_RINGS)
        for _ in range(2):  # the second pass uses cotangent weights of the faired patch
            out_vertices = fair_vertices(out_vertices, out_faces, free, region)
    report.boundary_edges_after = len(boundary_half_edges(out_faces))
    return out_vertices, out_faces, report
