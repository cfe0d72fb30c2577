"""Spectral segmentation: exact part counts, connected parts, multi-component rules."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from deployments.geometry.mesh_io import load_mesh
from deployments.geometry.render import render_numpy
from deployments.geometry.segment import part_colors, segments_to_scene, spectral_segment

MESHES = ("cheburashka.obj", "fandisk.obj", "spot.obj")


def _part_pieces(mesh: trimesh.Trimesh, labels: np.ndarray) -> int:
    """Connected pieces over all labels, faces joined when they share a (welded) edge."""
    _, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[mesh.faces]
    by_edge: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (a, b, c) in enumerate(faces.tolist()):
        for u, v in ((a, b), (b, c), (c, a)):
            by_edge[(min(u, v), max(u, v))].append(index)
    pairs = np.array(
        [
            (f[i], f[j])
            for f in by_edge.values()
            for i in range(len(f))
            for j in range(i + 1, len(f))
        ]
    ).reshape(-1, 2)
    same = pairs[labels[pairs[:, 0]] == labels[pairs[:, 1]]]
    graph = sparse.coo_matrix((np.ones(len(same)), same.T), shape=(len(faces),) * 2)
    return connected_components(graph, directed=False)[0]


@pytest.fixture(scope="module")
def meshes(assets_dir: Path) -> dict[str, trimesh.Trimesh]:
    return {name: load_mesh(assets_dir / name) for name in MESHES + ("teapot.obj",)}


@pytest.mark.parametrize("k", [2, 5, 8, 16])
@pytest.mark.parametrize("name", MESHES)
def test_exactly_k_connected_parts(meshes: dict[str, trimesh.Trimesh], name: str, k: int) -> None:
    mesh = meshes[name]
    labels = spectral_segment(mesh, k, seed=0)
    assert labels.shape == (len(mesh.faces),)
    assert sorted(np.unique(labels)) == list(range(k))
    assert _part_pieces(mesh, labels) == k  # each label is one connected patch
    areas = np.bincount(labels, weights=mesh.area_faces, minlength=k)
    assert np.all(np.diff(areas) <= 1e-12)  # part 0 is the largest


def test_same_seed_same_labels(meshes: dict[str, trimesh.Trimesh]) -> None:
    mesh = meshes["cheburashka.obj"]
    assert np.array_equal(spectral_segment(mesh, 6, seed=3), spectral_segment(mesh, 6, seed=3))


def test_cheburashka_two_parts_split_head_from_body(meshes: dict[str, trimesh.Trimesh]) -> None:
    mesh = meshes["cheburashka.obj"]
    labels = spectral_segment(mesh, 2)
    heights = [mesh.triangles_center[labels == p, 1].mean() for p in (0, 1)]
    low, high = mesh.bounds[:, 1]
    assert abs(heights[0] - heights[1]) > 0.25 * (high - low)


def test_multi_component_rules(meshes: dict[str, trimesh.Trimesh]) -> None:
    teapot = meshes["teapot.obj"]  # four pieces once coincident vertices are welded
    with pytest.raises(ValueError, match="4 disconnected pieces"):
        spectral_segment(teapot, 2)
    four = spectral_segment(teapot, 4)
    assert _part_pieces(teapot, four) == 4
    six = spectral_segment(teapot, 6)
    assert sorted(np.unique(six)) == list(range(6)) and _part_pieces(teapot, six) == 6


def test_too_many_parts_for_the_faces(assets_dir: Path) -> None:
    box = load_mesh(assets_dir / "BoxTextured.glb")  # 12 faces
    with pytest.raises(ValueError, match="12 faces"):
        spectral_segment(box, 16)
    assert sorted(np.unique(spectral_segment(box, 12))) == list(range(12))


def test_scene_has_named_coloured_parts(meshes: dict[str, trimesh.Trimesh]) -> None:
    mesh = meshes["spot.obj"]
    labels = spectral_segment(mesh, 5)
    scene = segments_to_scene(mesh, labels)
    assert sorted(scene.graph.nodes_geometry) == [f"part_{i:02d}" for i in range(5)]
    assert sum(len(g.faces) for g in scene.geometry.values()) == len(mesh.faces)
    colours = {tuple(g.visual.face_colors[0]) for g in scene.geometry.values()}
    assert len(colours) == 5
    rgb = render_numpy(scene, 128)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20


def test_part_colors_are_distinct() -> None:
    colors = part_colors(32)
    assert colors.shape == (32, 4) and colors.dtype == np.uint8
    assert len({tuple(c) for c in colors}) == 32 and (colors[:, 3] == 255).all()
