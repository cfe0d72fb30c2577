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
Large components (over MAX_SPECTRAL_FACES faces) are clustered on a quadric-decimated
proxy, and its labels are carried back to the original faces by nearest face centre
before the repair step, which runs on the full-resolution graph.
"""

from __future__ import annotations

import colorsys

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from deployments.geometry.parts import FaceGraph, build_face_graph, enforce_parts, laplacian

MAX_SPECTRAL_FACES = 20_000
MAX_PARTS = 64


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
        piece.visual = trimesh.visual.ColorVisuals(piece, face_colors=colors[part])
        name = f"part_{part:02d}"
        scene.add_geometry(piece, node_name=name, geom_name=name)
    return scene


def _embedding(graph: FaceGraph, k: int, seed: int) -> np.ndarray:
    """Rows of the k smallest normalised-Laplacian eigenvectors, scaled to unit length."""
    from scipy.sparse.linalg import eigsh

    matrix, _ = laplacian(graph)
    n = matrix.shape[0]
    if n <= max(4 * k, 200):
        _, vectors = np.linalg.eigh(matrix.toarray())
        vectors = vectors[:, :k]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        _, vectors = eigsh(matrix, k=k, sigma=-1e-3, which="LM", v0=v0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _cluster(vertices: np.ndarray, faces: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Spectral clustering of one connected component into exactly k connected parts."""
    from sklearn.cluster import KMeans

    graph = build_face_graph(vertices, faces)
    if k == 1:
        return np.zeros(len(faces), dtype=np.int64)
    embedding = _embedding(graph, k, seed)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(embedding)
    return enforce_parts(graph, labels, k)


def _segment_component(vertices: np.ndarray, faces: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster a component, on a decimated proxy if it is large; labels per original face."""
    if k == 1:
        return np.zeros(len(faces), dtype=np.int64)
    used, faces = np.unique(faces, return_inverse=True)
    vertices, faces = vertices[used], faces.reshape(-1, 3)
    if len(faces) <= MAX_SPECTRAL_FACES:
        return _cluster(vertices, faces, k, seed)
    from scipy.spatial import cKDTree

    from deployments.geometry.decimate import simplify_arrays

    points, proxy = simplify_arrays(vertices, faces, MAX_SPECTRAL_FACES)
    proxy_labels = _cluster(points, proxy, k, seed)
    centres = vertices[faces].mean(axis=1)
    _, nearest = cKDTree(points[proxy].mean(axis=1)).query(centres)
    return enforce_parts(build_face_graph(vertices, faces), proxy_labels[nearest], k)


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
        local = _segment_component(vertices, faces[members], int(allotted[index]), seed)
        labels[members] = local + offset
        offset += int(allotted[index])
    return _order_by_area(labels, graph.area, num_parts)


def _order_by_area(labels: np.ndarray, area: np.ndarray, k: int) -> np.ndarray:
    """Renumber labels so that part 0 is the largest by surface area."""
    order = np.argsort(-np.bincount(labels, weights=area, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]
