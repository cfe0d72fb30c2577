"""Segmentation into exactly N edge-connected parts by spectral clustering of the face graph.

Method (after Liu and Zhang 2004, with Katz and Tal's dihedral distance): faces are nodes,
faces sharing an edge are joined, and each join is weighted by an affinity that falls with
the geodesic distance between the face centres and, more steeply, with concave folds
(where parts meet), so cuts prefer concave creases. The smallest eigenvectors of the
normalised Laplacian (scipy eigsh, shift-invert) embed the faces; KMeans (seeded) clusters
them. The clusters then pass through a repair step that guarantees the contract: every
label is one connected patch and there are exactly N of them (see parts.py).

Multi-component meshes: each edge-connected component (after welding coincident
positions) is a node first. N must be at least the number of components; every component
gets one part and the rest are dealt out by area (D'Hondt), capped by face counts.
Large components (over spectral_budget(k) faces: 20k for up to 12 parts, down to 8k for
30 or more) are clustered on a quadric-decimated proxy, whose labels are carried back to
the original faces by nearest face centre before the repair step, which always runs on
the full-resolution graph.
"""

from __future__ import annotations

import colorsys

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from deployments.geometry.parts import (
    FaceGraph,
    build_face_graph,
    enforce_parts,
    laplacian,
    smallest_eigenvectors,
    subgraph,
)

MAX_SPECTRAL_FACES = 20_000
MIN_SPECTRAL_FACES = 8_000
MAX_PARTS = 64
KMEANS_SAMPLE = 5000  # KMeans is fitted on this many faces, then labels all of them


def part_colors(n: int) -> np.ndarray:
    """`n` distinct opaque RGBA colours (uint8): golden-ratio hues, alternating lightness."""
    colors = np.empty((n, 4), dtype=np.uint8)
    for i in range(n):
        hue = (0.08 + i * 0.618033988749895) % 1.0
        light, sat = (0.55, 0.75) if i % 2 == 0 else (0.42, 0.65)
        rgb = colorsys.hls_to_rgb(hue, light if i % 4 < 2 else light + 0.12, sat)
        colors[i] = [*(round(c * 255) for c in rgb), 255]
    return colors


def segments_to_scene(mesh: trimesh.Trimesh, labels: np.ndarray) -> trimesh.Scene:
    """One node per label, named part_00, part_01, ..., each in its own colour."""
    labels = np.asarray(labels)
    if labels.shape != (len(mesh.faces),):
        raise ValueError("labels must have one entry per face")
    count = int(labels.max()) + 1 if len(labels) else 0
    colors = part_colors(count)
    scene = trimesh.Scene()
    for part in range(count):
        faces = np.flatnonzero(labels == part)
        if len(faces) == 0:
            continue
        piece = mesh.submesh([faces], append=True, repair=False)
        assert isinstance(piece, trimesh.Trimesh)  # append=True gives one mesh
        piece.visual = trimesh.visual.ColorVisuals(piece, face_colors=colors[part])
        name = f"part_{part:02d}"
        scene.add_geometry(piece, node_name=name, geom_name=name)
    return scene


def spectral_budget(k: int) -> int:
    """Faces clustered directly for k parts; eigsh cost grows with faces times k."""
    return int(np.clip(240_000 // max(k, 1), MIN_SPECTRAL_FACES, MAX_SPECTRAL_FACES))


def _embedding(graph: FaceGraph, k: int, seed: int) -> np.ndarray:
    """Rows of the k smallest normalised-Laplacian eigenvectors, scaled to unit length."""
    matrix, _ = laplacian(graph)
    vectors = smallest_eigenvectors(matrix, k, seed)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _cluster(graph: FaceGraph, k: int, seed: int) -> np.ndarray:
    """Spectral clustering of one connected face graph into exactly k connected parts."""
    from sklearn.cluster import KMeans

    embedding = _embedding(graph, k, seed)
    rng = np.random.default_rng(seed)
    fit_rows = rng.choice(graph.size, min(graph.size, KMEANS_SAMPLE), replace=False)
    kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(embedding[fit_rows])
    return enforce_parts(graph, kmeans.predict(embedding), k)


def _segment_component(
    vertices: np.ndarray, faces: np.ndarray, graph: FaceGraph, k: int, seed: int
) -> np.ndarray:
    """Cluster a component, on a decimated proxy if it is large; labels per original face."""
    if k == 1:
        return np.zeros(len(faces), dtype=np.int64)
    budget = spectral_budget(k)
    if len(faces) <= budget:
        return _cluster(graph, k, seed)
    from scipy.spatial import cKDTree

    from deployments.geometry.decimate import simplify_arrays

    used, local = np.unique(faces, return_inverse=True)
    points, proxy = simplify_arrays(vertices[used], local.reshape(-1, 3), budget)
    proxy_labels = _cluster(build_face_graph(points, proxy), k, seed)
    _, nearest = cKDTree(points[proxy].mean(axis=1)).query(vertices[faces].mean(axis=1))
    return enforce_parts(graph, proxy_labels[nearest], k)


def _allocate(areas: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Parts per component: one each, the rest by largest area per part (D'Hondt)."""
    parts = np.ones(len(areas), dtype=np.int64)
    for _ in range(k - len(areas)):
        quota = np.where(parts < sizes, areas / parts, -1.0)
        parts[int(np.argmax(quota))] += 1
    return parts


def _weld(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Unique positions and faces re-indexed onto them; face order is unchanged."""
    unique, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[mesh.faces]


def _check_request(faces: int, components: int, num_parts: int) -> None:
    if not 1 <= num_parts <= MAX_PARTS:
        raise ValueError(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
    if faces < num_parts:
        raise ValueError(f"the mesh has {faces} faces, fewer than the {num_parts} parts asked")
    if components > num_parts:
        raise ValueError(
            f"the mesh has {components} disconnected pieces, so it cannot be split into "
            f"{num_parts} connected parts; ask for at least {components}"
        )


def spectral_segment(mesh: trimesh.Trimesh, num_parts: int, seed: int = 0) -> np.ndarray:
    """Per-face labels in [0, num_parts): exactly num_parts labels, each one edge-connected
    patch (edges shared after welding coincident positions), largest part first.

    Raises ValueError if num_parts is out of range, exceeds the face count, or is smaller
    than the number of disconnected pieces of the mesh.
    """
    vertices, faces = _weld(mesh)
    graph = build_face_graph(vertices, faces)
    adjacency = sparse.coo_matrix(
        (np.ones(len(graph.pairs)), (graph.pairs[:, 0], graph.pairs[:, 1])),
        shape=(len(faces), len(faces)),
    )
    count, component = connected_components(adjacency, directed=False)
    _check_request(len(faces), count, num_parts)
    areas = np.bincount(component, weights=graph.area, minlength=count)
    sizes = np.bincount(component, minlength=count)
    allotted = _allocate(areas, sizes, num_parts)
    labels = np.empty(len(faces), dtype=np.int64)
    offset = 0
    for index in np.argsort(-areas, kind="stable"):
        members = np.flatnonzero(component == index)
        part_graph = graph if count == 1 else subgraph(graph, members)
        parts = int(allotted[index])
        local = _segment_component(vertices, faces[members], part_graph, parts, seed)
        labels[members] = local + offset
        offset += parts
    return _order_by_area(labels, graph.area, num_parts)


def _order_by_area(labels: np.ndarray, area: np.ndarray, k: int) -> np.ndarray:
    """Renumber labels so that part 0 is the largest by surface area."""
    order = np.argsort(-np.bincount(labels, weights=area, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]
