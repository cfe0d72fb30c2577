"""A joint tree from the shape itself: voxel medial axis -> pruned graph -> joints.

1. The inside of the mesh is voxelised, about RESOLUTION cells along the longest side,
   by generalised winding number (libigl), which tolerates holes and self-intersections.
   A flat input (thickness under FLAT_RATIO of its size, e.g. a 2-D cut-out) has no
   inside; it is rasterised in its own plane instead and everything below runs in 2-D.
2. scikit-image thins the largest connected piece to its medial axis (Lee 1994).
3. The axis voxels form a graph (8/26-neighbours, minimum spanning tree, so it is a
   tree). A leaf branch whose reach (its length plus the medial radius at its tip) stays
   within SPUR_FACTOR x the medial radius at its junction does not stick out of the body
   there: it is a spur of a surface bump and is pruned, repeatedly (radii from the
   distance transform of the voxels).
4. What remains is cut into joints: every junction and end point, plus points along
   each branch at about SEGMENT_SHARE of the longest side apart, so limbs get middle
   joints (elbow, knee). The root is the junction nearest the centroid of the volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import trimesh

RESOLUTION = 96
FLAT_RATIO = 0.01
SPUR_FACTOR = 1.5
SEGMENT_SHARE = 0.12
MIN_VOXELS = 20


class SkeletonError(ValueError):
    """The shape has no usable medial axis (no inside, or too small at this resolution)."""


@dataclass
class Skeleton:
    positions: np.ndarray  # (J, 3) joint positions, world space
    parents: np.ndarray  # (J,) parent index, -1 for the root (index 0)
    names: list[str]
    planar: bool  # built from a flat input's 2-D silhouette

    @property
    def bones(self) -> np.ndarray:
        """(B, 2) parent, child joint pairs."""
        child = np.flatnonzero(self.parents >= 0)
        return np.column_stack([self.parents[child], child])


@dataclass
class _Grid:
    inside: np.ndarray  # bool volume (2-D or 3-D)
    origin: np.ndarray  # world position of cell (0, 0, ...) in grid coordinates
    pitch: float
    basis: np.ndarray  # (dims, 3): world direction of each grid axis

    def to_world(self, cells: np.ndarray) -> np.ndarray:
        return self.origin + (cells * self.pitch) @ self.basis


def _grid_axes(low: np.ndarray, high: np.ndarray, pitch: float) -> list[np.ndarray]:
    return [
        low[k] + pitch * (np.arange(int(np.ceil((high[k] - low[k]) / pitch)) + 3) - 1)
        for k in range(len(low))
    ]


def _voxelize_3d(mesh: trimesh.Trimesh, resolution: int) -> _Grid:
    import igl

    low, high = mesh.bounds
    pitch = float((high - low).max()) / resolution
    axes = _grid_axes(low, high, pitch)
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    winding = igl.fast_winding_number(
        np.ascontiguousarray(mesh.vertices, dtype=np.float64),
        np.ascontiguousarray(mesh.faces, dtype=np.int64),
        centres.reshape(-1, 3),
    )
    inside = np.abs(winding).reshape(centres.shape[:3]) > 0.5
    origin = np.array([a[0] for a in axes])
    return _Grid(inside, origin, pitch, np.eye(3))


def _rasterize_2d(mesh: trimesh.Trimesh, resolution: int) -> _Grid:
    """Flat input: fill its triangles in the plane of its two main directions."""
    from PIL import Image, ImageDraw

    centre = mesh.vertices.mean(axis=0)
    basis = np.linalg.svd(mesh.vertices - centre, full_matrices=False)[2][:2]
    flat = (mesh.vertices - centre) @ basis.T
    low, high = flat.min(axis=0), flat.max(axis=0)
    pitch = float((high - low).max()) / resolution
    axes = _grid_axes(low, high, pitch)
    size = (len(axes[0]), len(axes[1]))
    image = Image.new("1", size, 0)
    draw = ImageDraw.Draw(image)
    cells = (flat - np.array([axes[0][0], axes[1][0]])) / pitch
    for triangle in cells[mesh.faces].tolist():
        draw.polygon([tuple(p) for p in triangle], fill=1, outline=1)
    # via "L": a mode-"1" image converts to bools whose bytes are 255, which crashes skimage
    inside = np.ascontiguousarray(np.asarray(image.convert("L")).T > 0)  # PIL: (row=y, col=x)
    origin = centre + np.array([axes[0][0], axes[1][0]]) @ basis
    return _Grid(inside, origin, pitch, basis)


def _largest_piece(inside: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(inside, structure=np.ones((3,) * inside.ndim))
    if count <= 1:
        return inside
    sizes = np.bincount(labels.reshape(-1))[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def _axis_tree(axis_cells: np.ndarray) -> nx.Graph:
    """Minimum spanning tree of the medial-axis voxels joined to their neighbours."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(axis_cells).query_pairs(
        r=np.sqrt(axis_cells.shape[1]) + 1e-6, output_type="ndarray"
    )
    graph = nx.Graph()
    graph.add_nodes_from(range(len(axis_cells)))
    lengths = np.linalg.norm(axis_cells[pairs[:, 0]] - axis_cells[pairs[:, 1]], axis=1)
    graph.add_weighted_edges_from(
        zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), lengths.tolist(), strict=True)
    )
    tree = nx.minimum_spanning_tree(graph)
    biggest = max(nx.connected_components(tree), key=len)
    return tree.subgraph(biggest).copy()


def _leaf_branch(tree: nx.Graph, leaf: int) -> list[int]:
    """Nodes from a leaf up to (not including) the first node of degree >= 3."""
    path, previous, current = [leaf], None, leaf
    while True:
        nxt = [n for n in tree.neighbors(current) if n != previous]
        if len(nxt) != 1 or tree.degree(nxt[0]) >= 3:
            return path + nxt[:1]
        previous, current = current, nxt[0]
        path.append(current)


def _prune(tree: nx.Graph, cells: np.ndarray, radius: np.ndarray) -> None:
    """Remove spur branches, shortest first, until every leaf branch is long enough."""
    changed = True
    while changed:
        changed = False
        leaves = [n for n in tree.nodes if tree.degree(n) == 1]
        spurs = []
        for leaf in leaves:
            branch = _leaf_branch(tree, leaf)
            end = branch[-1]
            if tree.degree(end) < 3:
                continue  # the tree is a single path: nothing to prune against
            length = float(np.linalg.norm(np.diff(cells[branch], axis=0), axis=1).sum())
            # a spur ends inside (or just outside) the junction's own medial ball
            if length < 2.0 or length + radius[leaf] < SPUR_FACTOR * radius[end]:
                spurs.append((length, branch))
        for _, branch in sorted(spurs, key=lambda item: item[0]):
            end = branch[-1]
            if all(tree.has_node(n) for n in branch) and tree.degree(end) >= 3:
                tree.remove_nodes_from(branch[:-1])
                changed = True


def _branches(tree: nx.Graph) -> list[list[int]]:
    """Paths between key nodes (degree != 2), each listed once, ends included."""
    keys = {n for n in tree.nodes if tree.degree(n) != 2}
    seen: set[tuple[int, int]] = set()
    branches = []
    for start in keys:
        for first in tree.neighbors(start):
            if (start, first) in seen:
                continue
            path, previous, current = [start, first], start, first
            while current not in keys:
                current, previous = (
                    next(n for n in tree.neighbors(current) if n != previous),
                    current,
                )
                path.append(current)
            seen.add((start, path[1]))
            seen.add((path[-1], path[-2]))
            branches.append(path)
    return branches


def _merge_junctions(
    tree: nx.Graph, branches: list[list[int]], cells: np.ndarray
) -> dict[int, int]:
    """Map key nodes to one representative when two junctions are under 3 cells apart."""
    union = nx.utils.UnionFind()
    for path in branches:
        a, b = path[0], path[-1]
        if tree.degree(a) >= 3 and tree.degree(b) >= 3:
            if np.linalg.norm(np.diff(cells[path], axis=0), axis=1).sum() < 3.0:
                union.union(a, b)
    return {n: union[n] for n in tree.nodes if tree.degree(n) != 2}


def _joint_graph(tree: nx.Graph, cells: np.ndarray, segment: float) -> tuple[np.ndarray, nx.Graph]:
    """Joint positions (in cells) and the graph joining them."""
    branches = _branches(tree)
    rep = _merge_junctions(tree, branches, cells)
    groups: dict[int, list[int]] = {}
    for node, head in rep.items():
        groups.setdefault(head, []).append(node)
    index = {head: i for i, head in enumerate(groups)}
    positions = [cells[members].mean(axis=0) for members in groups.values()]
    graph = nx.Graph()
    graph.add_nodes_from(range(len(positions)))
    for path in branches:
        a, b = index[rep[path[0]]], index[rep[path[-1]]]
        if a == b:
            continue
        steps = np.linalg.norm(np.diff(cells[path], axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(steps)])
        pieces = max(int(round(arc[-1] / segment)), 1)
        previous = a
        for k in range(1, pieces):
            at = int(np.searchsorted(arc, arc[-1] * k / pieces))
            window = cells[path[max(at - 2, 0) : at + 3]]
            positions.append(window.mean(axis=0))
            graph.add_edge(previous, len(positions) - 1)
            previous = len(positions) - 1
        graph.add_edge(previous, b)
    return np.array(positions), graph


def _root_and_parents(
    graph: nx.Graph, positions: np.ndarray, centre: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order joints breadth-first from the root; returns (order, parents in that order)."""
    tree = nx.minimum_spanning_tree(graph)  # joints of merged junctions can close a cycle
    junctions = [n for n in tree.nodes if tree.degree(n) >= 3] or list(tree.nodes)
    root = min(junctions, key=lambda n: float(np.linalg.norm(positions[n] - centre)))
    order = [root, *(child for _, child in nx.bfs_edges(tree, root))]
    rank = {node: i for i, node in enumerate(order)}
    parents = np.full(len(order), -1, dtype=np.int64)
    for parent, child in nx.bfs_edges(tree, root):
        parents[rank[child]] = rank[parent]
    return np.array(order), parents


def _fallback_bone(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A blob without a usable axis: one bone along its main direction, through its centre."""
    centre = cells.mean(axis=0)
    direction = np.linalg.svd(cells - centre, full_matrices=False)[2][0]
    reach = np.abs((cells - centre) @ direction).max() * 0.8
    return np.array([centre - reach * direction, centre + reach * direction]), np.array([-1, 0])


def build_skeleton(mesh: trimesh.Trimesh, resolution: int = RESOLUTION) -> Skeleton:
    """Joint tree of a mesh (see the module docstring). Raises SkeletonError if it has none."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    extents = np.sort(mesh.extents)
    if extents[-1] <= 0:
        raise SkeletonError("the mesh has no extent")
    planar = bool(extents[0] < FLAT_RATIO * extents[-1])
    if planar and extents[1] < FLAT_RATIO * extents[-1]:
        raise SkeletonError("the mesh is a line or a point: there is no shape to rig")
    grid = _rasterize_2d(mesh, resolution) if planar else _voxelize_3d(mesh, resolution)
    inside = _largest_piece(grid.inside)
    if inside.sum() < MIN_VOXELS:
        raise SkeletonError(
            "the mesh encloses no volume at this resolution (an open sheet or very thin "
            "shape); close it or give it thickness"
        )
    radius = ndimage.distance_transform_edt(inside)
    axis_cells = np.argwhere(skeletonize(np.ascontiguousarray(inside))).astype(np.float64)
    tree = _axis_tree(axis_cells) if len(axis_cells) >= 2 else nx.Graph()
    if tree.number_of_nodes() >= 2:
        _prune(tree, axis_cells, radius[tuple(axis_cells.astype(int).T)])
    if tree.number_of_nodes() >= 2:
        positions, graph = _joint_graph(tree, axis_cells, SEGMENT_SHARE * resolution)
        centre = np.argwhere(inside).mean(axis=0)
        order, parents = _root_and_parents(graph, positions, centre)
        positions = positions[order]
    else:
        positions, parents = _fallback_bone(np.argwhere(inside).astype(np.float64))
    names = ["root"] + [f"joint_{i:02d}" for i in range(1, len(positions))]
    return Skeleton(grid.to_world(positions), parents, names, planar)
