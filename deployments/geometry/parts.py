"""The face graph used by segmentation, and the repair that makes labels exact.

Clustering alone gives labels that may be scattered (one label on two far-apart limbs),
have slivers, or number fewer than asked. `enforce_parts` turns any labelling of a
connected face graph into exactly k labels that are each one edge-connected patch:

1. every label is split into its connected pieces (patches);
2. patches under a small share of the area are merged into the neighbour they share the
   longest boundary with, smallest first; while there are more than k patches, the
   smallest is merged the same way (merging adjacent patches keeps them connected);
3. while there are fewer than k, the largest patch is cut in two along the best
   normalised cut of its Fiedler ordering (or, when huge, by nearest of two far-apart
   seeds), and the two sides are repaired so that both are connected.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra

CONVEX_ETA = 0.15  # Katz and Tal: convex folds count this much of a concave one
GEODESIC_SHARE = 0.4  # weight of geodesic against angular distance in the edge cost
MAX_BISECT_FACES = 50_000  # above this a patch is cut by two-seed Voronoi instead


@dataclass(frozen=True)
class FaceGraph:
    """Faces as nodes; `pairs` join faces sharing an edge (non-manifold edges chain)."""

    pairs: np.ndarray  # (e, 2) int64 face indices
    length: np.ndarray  # (e,) shared edge length
    weight: np.ndarray  # (e,) affinity, 1 / edge cost
    area: np.ndarray  # (f,) face area
    size: int  # number of faces


def _shared_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face pairs sharing an edge, and that edge's two vertices."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    owner = np.repeat(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    same = (edges[1:] == edges[:-1]).all(axis=1)
    pairs = np.column_stack([owner[:-1][same], owner[1:][same]])
    keep = pairs[:, 0] != pairs[:, 1]
    return pairs[keep], edges[1:][same][keep]


def build_face_graph(vertices: np.ndarray, faces: np.ndarray) -> FaceGraph:
    """Dual graph with affinities from centre-to-centre geodesic and dihedral distance."""
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(double_area, 1e-300)[:, None]
    centres = tri.mean(axis=1)
    pairs, edge = _shared_edges(faces)
    a, b = pairs[:, 0], pairs[:, 1]
    ends = vertices[edge]
    middle = ends.mean(axis=1)
    geodesic = np.linalg.norm(centres[a] - middle, axis=1)
    geodesic += np.linalg.norm(middle - centres[b], axis=1)
    bend = 1.0 - np.clip((normals[a] * normals[b]).sum(axis=1), -1.0, 1.0)
    concave = ((centres[b] - centres[a]) * normals[a]).sum(axis=1) > 0
    angular = np.where(concave, 1.0, CONVEX_ETA) * bend
    cost = GEODESIC_SHARE * geodesic / max(float(geodesic.mean()), 1e-300)
    cost += (1 - GEODESIC_SHARE) * angular / max(float(angular.mean()), 1e-12)
    length = np.linalg.norm(ends[:, 0] - ends[:, 1], axis=1)
    weight = 1.0 / np.maximum(cost, 1e-6)  # inverse distance: bounded, never isolates a face
    return FaceGraph(pairs, length, weight, double_area / 2.0, len(faces))


def subgraph(graph: FaceGraph, nodes: np.ndarray) -> FaceGraph:
    """The graph induced by `nodes` (sorted face indices), renumbered 0..len(nodes)-1."""
    local = np.full(graph.size, -1)
    local[nodes] = np.arange(len(nodes))
    inside = (local[graph.pairs] >= 0).all(axis=1)
    return FaceGraph(
        local[graph.pairs[inside]],
        graph.length[inside],
        graph.weight[inside],
        graph.area[nodes],
        len(nodes),
    )


def _weights(graph: FaceGraph, nodes: np.ndarray | None = None) -> sparse.csr_matrix:
    """Symmetric affinity matrix of the graph, or of the subgraph induced by `nodes`."""
    if nodes is not None:
        graph = subgraph(graph, nodes)
    pairs, size = graph.pairs, graph.size
    w = sparse.coo_matrix((graph.weight, (pairs[:, 0], pairs[:, 1])), shape=(size, size))
    return (w + w.T).tocsr()


def laplacian(
    graph: FaceGraph, nodes: np.ndarray | None = None
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Normalised Laplacian I - D^-1/2 W D^-1/2 (of the graph or induced subgraph), and D^-1/2."""
    w = _weights(graph, nodes)
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-300))
    scale = sparse.diags(inv_sqrt)
    return (sparse.identity(w.shape[0], format="csr") - scale @ w @ scale).tocsr(), inv_sqrt


def smallest_eigenvectors(matrix: sparse.csr_matrix, k: int, seed: int = 0) -> np.ndarray:
    """Eigenvectors of the k smallest eigenvalues of a symmetric PSD matrix, ascending.

    Small matrices go dense; otherwise ARPACK in shift-invert mode just below zero (fast
    for the near-zero end of a Laplacian), with LOBPCG as a fallback if ARPACK stalls.
    """
    from scipy.sparse.linalg import ArpackError, eigsh, lobpcg

    n = matrix.shape[0]
    if n <= max(4 * k, 200):
        return np.linalg.eigh(matrix.toarray())[1][:, :k]
    start = np.random.default_rng(seed).standard_normal((n, k))
    try:
        values, vectors = eigsh(matrix, k=k, sigma=-1e-3, which="LM", v0=start[:, 0], tol=1e-6)
    except ArpackError:
        values, vectors = lobpcg(matrix, start, largest=False, tol=1e-5, maxiter=500)
    return vectors[:, np.argsort(values)]


def _pieces(graph: FaceGraph, labels: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected pieces of each label: (count, piece id per face)."""
    a, b = graph.pairs[:, 0], graph.pairs[:, 1]
    same = labels[a] == labels[b]
    matrix = sparse.coo_matrix((np.ones(same.sum()), (a[same], b[same])), (graph.size,) * 2)
    return connected_components(matrix, directed=False)


def _patch_adjacency(graph: FaceGraph, patch: np.ndarray, count: int) -> list[dict[int, float]]:
    """Shared boundary length between every pair of touching patches."""
    a, b = patch[graph.pairs[:, 0]], patch[graph.pairs[:, 1]]
    cross = a != b
    low, high = np.minimum(a, b)[cross], np.maximum(a, b)[cross]
    codes, inverse = np.unique(low * count + high, return_inverse=True)
    lengths = np.bincount(inverse, weights=graph.length[cross])
    neighbours: list[dict[int, float]] = [{} for _ in range(count)]
    for code, length in zip(codes.tolist(), lengths.tolist(), strict=True):
        p, q = divmod(code, count)
        neighbours[p][q] = neighbours[q][p] = length
    return neighbours


def _merge(graph: FaceGraph, patch: np.ndarray, count: int, k: int) -> np.ndarray:
    """Merge small patches, then the smallest ones while more than k; new id per patch."""
    area = np.bincount(patch, weights=graph.area, minlength=count)
    threshold = min(0.02, 0.25 / k) * area.sum()
    neighbours = _patch_adjacency(graph, patch, count)
    parent = np.arange(count)
    heap = [(float(x), p) for p, x in enumerate(area)]
    heapq.heapify(heap)
    alive = count
    while heap:
        size, p = heapq.heappop(heap)
        if parent[p] != p or size != area[p] or not neighbours[p]:
            continue
        if alive <= k and size >= threshold:
            break
        q = max(neighbours[p], key=neighbours[p].__getitem__)
        for r, length in list(neighbours[p].items()):
            del neighbours[r][p]
            if r != q:
                neighbours[q][r] = neighbours[r][q] = neighbours[q].get(r, 0.0) + length
        neighbours[p] = {}
        parent[p], area[q], alive = q, area[q] + area[p], alive - 1
        heapq.heappush(heap, (float(area[q]), q))
    roots = parent.copy()
    while not np.array_equal(roots, roots[roots]):
        roots = roots[roots]
    return np.unique(roots, return_inverse=True)[1][patch]


def _fiedler_cut(graph: FaceGraph, nodes: np.ndarray) -> np.ndarray:
    """Boolean side per node: best normalised cut along the Fiedler vector, 20-80% area."""
    matrix, inv_sqrt = laplacian(graph, nodes)
    vectors = smallest_eigenvectors(matrix, 2)
    order = np.argsort(vectors[:, 1] * inv_sqrt, kind="stable")
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[order] = np.arange(len(nodes))
    local = np.full(graph.size, -1)
    local[nodes] = np.arange(len(nodes))
    inside = (local[graph.pairs] >= 0).all(axis=1)
    ends = np.sort(rank[local[graph.pairs[inside]]], axis=1)
    step = np.zeros(len(nodes) + 1)
    np.add.at(step, ends[:, 0], graph.weight[inside])
    np.add.at(step, ends[:, 1], -graph.weight[inside])
    cut = np.cumsum(step)[:-1]
    share = np.cumsum(graph.area[nodes][order]) / max(float(graph.area[nodes].sum()), 1e-300)
    balanced = (share >= 0.2) & (share <= 0.8)
    score = np.full(len(nodes), np.inf)
    score[balanced] = cut[balanced] / np.minimum(share, 1 - share)[balanced]
    best = int(np.argmin(score)) if np.isfinite(score).any() else len(nodes) // 2 - 1
    return rank <= max(best, 0)


def _voronoi_cut(graph: FaceGraph, nodes: np.ndarray) -> np.ndarray:
    """Boolean side per node: nearer (by hops) to the first of two far-apart seeds."""
    w = _weights(graph, nodes)
    w.data[:] = 1.0
    first = int(np.argmax(dijkstra(w, indices=0, unweighted=True)))
    hops = dijkstra(w, indices=first, unweighted=True)
    second = int(np.argmax(np.where(np.isfinite(hops), hops, -1)))
    _, _, sources = dijkstra(
        w, indices=[first, second], unweighted=True, min_only=True, return_predecessors=True
    )
    return sources == first


def _connected_sides(graph: FaceGraph, nodes: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Make both sides connected: keep the largest piece of side A, then the largest piece
    of everything else as side B; the leftovers only touch A, so they join it."""
    w = _weights(graph, nodes).tocoo()
    keep = side[w.row] == side[w.col]
    pieces = connected_components(
        sparse.coo_matrix((w.data[keep], (w.row[keep], w.col[keep])), w.shape), directed=False
    )[1]
    a_piece = np.bincount(pieces[side], minlength=pieces.max() + 1).argmax()
    side = pieces == a_piece
    keep = ~side[w.row] & ~side[w.col]
    pieces = connected_components(
        sparse.coo_matrix((w.data[keep], (w.row[keep], w.col[keep])), w.shape), directed=False
    )[1]
    b_piece = np.bincount(pieces[~side], minlength=pieces.max() + 1).argmax()
    return pieces != b_piece


def _split(graph: FaceGraph, labels: np.ndarray, k: int) -> np.ndarray:
    """Cut the largest patch with two or more faces in two until there are k patches."""
    labels = labels.copy()
    count = int(labels.max()) + 1
    while count < k:
        area = np.bincount(labels, weights=graph.area, minlength=count)
        area[np.bincount(labels, minlength=count) < 2] = -1.0
        nodes = np.flatnonzero(labels == int(np.argmax(area)))
        cut = _voronoi_cut if len(nodes) > MAX_BISECT_FACES else _fiedler_cut
        side = _connected_sides(graph, nodes, cut(graph, nodes))
        labels[nodes[~side]] = count
        count += 1
    return labels


def enforce_parts(graph: FaceGraph, labels: np.ndarray, k: int) -> np.ndarray:
    """Exactly k labels 0..k-1, each one connected patch, for a connected graph of >= k faces."""
    count, patch = _pieces(graph, np.asarray(labels))
    merged = _merge(graph, patch, count, k)
    return _split(graph, merged, k)
