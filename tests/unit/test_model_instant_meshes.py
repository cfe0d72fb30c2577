"""instant_meshes_retopology on real assets: vertex budget, quad quality, error, outputs."""

from __future__ import annotations

import ctypes
import io
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.geometry.decimate import clean_mesh, surface_error
from deployments.geometry.mesh_io import load_mesh
from deployments.instant_meshes_retopology import (
    InstantMeshesRetopology,
    PolyMesh,
    _polymesh,
    close_library_holes,
    topology_stats,
)

TARGET = 1000
# measured at 1000 vertices (mean / max over the bbox diagonal): stanford-bunny 3.9e-3 /
# 3.4e-2, spot 3.1e-3 / 2.3e-2, fandisk 1.2e-3 / 1.4e-2
MEAN_BOUND, MAX_BOUND = 6e-3, 5e-2


def _run(tmp: Path, mesh: Path, **params: Any) -> ModelOutput:
    stages: list[float] = []
    ctx = JobContext("job_im", 1, tmp, on_progress=lambda _s, f: stages.append(f))
    defaults = {"output_format": "obj", "target_vertex_count": TARGET, "seed": 42}
    out = InstantMeshesRetopology().run(ctx, {"mesh": mesh}, {**defaults, **params})
    assert stages == sorted(stages) and stages[-1] >= 0.8
    return out


def _parse_obj(data: bytes) -> tuple[np.ndarray, list[list[int]]]:
    """Vertices and polygons (0-based) of an OBJ with plain `v` and `f a b c [d]` lines."""
    vertices, faces = [], []
    for line in data.decode().splitlines():
        parts = line.split()
        if parts and parts[0] == "v":
            vertices.append([float(x) for x in parts[1:4]])
        elif parts and parts[0] == "f":
            faces.append([int(p.split("/")[0]) - 1 for p in parts[1:]])
    return np.array(vertices), faces


def _interior_valence4(faces: list[list[int]], n: int) -> float:
    edges: dict[tuple[int, int], int] = {}
    for face in faces:
        for a, b in zip(face, face[1:] + face[:1], strict=True):
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
    valence = np.zeros(n, dtype=int)
    border = np.zeros(n, dtype=bool)
    for (a, b), count in edges.items():
        valence[a] += 1
        valence[b] += 1
        if count == 1:
            border[a] = border[b] = True
    interior = ~border & (valence > 0)
    return float((valence[interior] == 4).mean())


@pytest.fixture(scope="module")
def runs(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelOutput]:
    tmp = tmp_path_factory.mktemp("im")
    return {
        "stanford-bunny": _run(tmp, assets_dir / "stanford-bunny.obj"),  # 35k verts, open
        "spot": _run(tmp, assets_dir / "spot.obj", output_format="glb"),  # UV seams, closed
        "fandisk": _run(tmp, assets_dir / "fandisk.obj", output_format="ply"),  # sharp edges
    }


def test_result_fields_match_the_quadric_model(runs: dict[str, ModelOutput]) -> None:
    result = runs["stanford-bunny"].result
    assert result["original_stats"] == {"vertices": 34834, "faces": 69451}
    out = result["output_stats"]
    assert set(out) == {"vertices", "faces", "quads"} and 0 < out["quads"] <= out["faces"]
    info = result["retopology_info"]
    assert set(info) == {"model", "variant", "vertex_reduction", "face_reduction", "seed"}
    assert info["model"] == "instant_meshes_retopology" and info["variant"] == "quad-dominant"
    assert info["seed"] == 42
    expected = f"{(1 - out['vertices'] / 34834) * 100:.1f}%"
    assert info["vertex_reduction"] == expected
    gen = runs["stanford-bunny"].generation_info
    assert gen["pre_decimated_to"] is not None  # 35k vertices: decimated first
    assert gen["seed_used"] is False and gen["deterministic"] is False
    assert gen["faces_are_quads"] is True and gen["file_faces"] == "quads and triangles"


@pytest.mark.parametrize("name", ["stanford-bunny", "spot", "fandisk"])
def test_vertex_count_is_near_the_target(runs: dict[str, ModelOutput], name: str) -> None:
    vertices = runs[name].result["output_stats"]["vertices"]
    assert abs(vertices - TARGET) <= 0.25 * TARGET, vertices


@pytest.mark.parametrize("name", ["stanford-bunny", "spot", "fandisk"])
def test_surface_error_is_bounded(
    runs: dict[str, ModelOutput], assets_dir: Path, name: str
) -> None:
    source = load_mesh(assets_dir / f"{name}.obj")
    mean, worst = surface_error(source, runs[name].preview, samples=10000)
    assert mean < MEAN_BOUND and worst < MAX_BOUND, (mean, worst)


def test_obj_keeps_quads_mostly_of_valence_four(runs: dict[str, ModelOutput]) -> None:
    out = runs["stanford-bunny"]
    vertices, faces = _parse_obj(out.files[0].data)
    sizes = np.array([len(f) for f in faces])
    assert set(sizes.tolist()) <= {3, 4}
    assert (sizes == 4).mean() >= 0.95
    assert _interior_valence4(faces, len(vertices)) >= 0.85
    assert len(vertices) == out.result["output_stats"]["vertices"]
    assert (sizes == 4).sum() == out.result["output_stats"]["quads"]
    assert out.generation_info["valence4_fraction"] >= 0.85


def test_obj_loads_back_with_trimesh(runs: dict[str, ModelOutput]) -> None:
    out = runs["stanford-bunny"]
    mesh = trimesh.load(io.BytesIO(out.files[0].data), file_type="obj", process=False)
    stats = out.result["output_stats"]
    assert len(mesh.vertices) == stats["vertices"]
    assert len(mesh.faces) == 2 * stats["quads"] + (stats["faces"] - stats["quads"])
    assert out.files[0].filename == "retopo_mesh.obj" and out.files[0].primary


@pytest.mark.parametrize(("name", "fmt"), [("spot", "glb"), ("fandisk", "ply")])
def test_glb_and_ply_are_triangulated_and_closed(
    runs: dict[str, ModelOutput], name: str, fmt: str
) -> None:
    out = runs[name]
    loaded = trimesh.load(io.BytesIO(out.files[0].data), file_type=fmt, force="mesh")
    stats = out.result["output_stats"]
    assert len(loaded.faces) == 2 * stats["quads"] + (stats["faces"] - stats["quads"])
    assert out.generation_info["faces_are_quads"] is False
    welded = clean_mesh(loaded)  # GLB splits nothing here, but be safe
    assert welded.is_watertight and welded.is_winding_consistent
    assert welded.volume > 0  # outward facing, like the input


def test_topology_of_a_closed_input(runs: dict[str, ModelOutput]) -> None:
    gen = runs["fandisk"].generation_info
    assert gen["quad_fraction"] >= 0.95 and gen["valence4_fraction"] >= 0.9
    assert gen["boundary_edges"] == 0 and gen["non_manifold_edges"] == 0


def test_library_output_never_reaches_stdout(
    assets_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    print("before")
    _run(tmp_path, assets_dir / "spot.obj", target_vertex_count=400)
    print("after")
    sys.stdout.flush()
    ctypes.CDLL(None).fflush(None)  # anything the library left in C stdio buffers
    out, _ = capfd.readouterr()
    assert out == "before\nafter\n"


def test_concurrent_jobs_both_finish_with_stdout_clean(
    assets_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    results: list[ModelOutput] = []
    errors: list[BaseException] = []

    def job(name: str) -> None:
        try:
            results.append(_run(tmp_path, assets_dir / name, target_vertex_count=300))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in ("spot.obj", "cow.obj")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctypes.CDLL(None).fflush(None)
    assert not errors and len(results) == 2
    assert capfd.readouterr().out == ""


def test_doublets_and_stacked_quads_are_repaired() -> None:
    vertices = np.random.default_rng(0).random((9, 3))
    faces = np.array(
        [
            [0, 4, 1, 2],  # with the next quad: a doublet at 4 (shares edges 0-4, 4-1)
            [1, 4, 0, 3],
            [5, 6, 7, 8],  # the same quad twice, opposite ways: a pillow
            [8, 7, 6, 5],
            [5, 6, 6, 7],  # a corner repeated: a triangle
        ]
    )
    poly, repaired = _polymesh(vertices, faces)
    assert repaired == 3  # the doublet merged, both pillow faces dropped
    assert len(poly.quads) == 1 and len(poly.triangles) == 1
    assert len(poly.vertices) == 7  # vertex 4 and the pillow's unused 8 are gone
    assert set(map(tuple, np.round(poly.vertices[poly.quads[0]], 12).tolist())) == set(
        map(tuple, np.round(vertices[[1, 2, 0, 3]], 12).tolist())
    )


def test_library_holes_are_closed_and_input_openings_kept() -> None:
    sphere = trimesh.creation.icosphere(3)  # a closed stand-in for the library's output
    faces = np.asarray(sphere.faces)
    rest = faces[~(faces == 0).any(axis=1)]  # drop the fan around vertex 0: one hole
    quads = np.empty((0, 4), dtype=np.int64)
    holed = PolyMesh(sphere.vertices.copy(), quads, rest)
    assert topology_stats(holed)["boundary_edges"] > 0
    closed, report = close_library_holes(holed, sphere)  # the input is closed: ours
    assert report.filled == 1 and report.kept_input_borders == 0
    assert topology_stats(closed)["boundary_edges"] == 0
    mesh = trimesh.Trimesh(closed.vertices, closed.triangulated(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    gap = np.linalg.norm(mesh.vertices[len(sphere.vertices) :], axis=1) - 1.0
    assert np.abs(gap).max() < 0.05  # the faired patch follows the sphere
    # the input has the same hole: it is one of its openings, left open
    opened = trimesh.Trimesh(sphere.vertices, rest, process=False)
    kept, report = close_library_holes(holed, opened)
    assert report.filled == 0 and report.kept_input_borders == 1
    assert topology_stats(kept)["boundary_edges"] == topology_stats(holed)["boundary_edges"]


@pytest.mark.parametrize("target", [10, 1_000_000])
def test_target_out_of_range_is_an_input_error(
    assets_dir: Path, tmp_path: Path, target: int
) -> None:
    with pytest.raises(ModelInputError, match="target_vertex_count"):
        _run(tmp_path, assets_dir / "spot.obj", target_vertex_count=target)


def test_unreadable_mesh_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.obj"
    bad.write_text("this is not a mesh\n")
    with pytest.raises(ModelInputError):
        _run(tmp_path, bad)
