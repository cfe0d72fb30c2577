"""xatlas_uv_unwrapping on real assets: charts under the threshold, packing, outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.geometry.gltf_validator import error_messages, validate_gltf
from deployments.geometry.uv_distortion import chart_distortion, isometric_layout
from deployments.xatlas_uv_unwrapping import XatlasUvUnwrapping


def _run(tmp: Path, mesh: Path, **params: Any) -> ModelOutput:
    stages: list[float] = []
    ctx = JobContext("job_uv", 1, tmp, on_progress=lambda _s, f: stages.append(f))
    defaults = {"output_format": "glb", "distortion_threshold": 1.25, "pack_method": "blender"}
    out = XatlasUvUnwrapping().run(ctx, {"mesh": mesh}, {**defaults, **params})
    assert stages == sorted(stages) and stages[-1] >= 0.8
    return out


def _file(out: ModelOutput, name: str) -> bytes:
    return next(f.data for f in out.files if f.filename == name)


@pytest.fixture(scope="module")
def spot_uv(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelOutput:
    return _run(
        tmp_path_factory.mktemp("uv"),
        assets_dir / "spot.obj",
        save_individual_parts=True,
        save_visuals=True,
    )


@pytest.fixture(scope="module")
def teapot_tight(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelOutput:
    return _run(
        tmp_path_factory.mktemp("uv"),
        assets_dir / "teapot.obj",
        output_format="obj",
        distortion_threshold=1.02,
        pack_method="none",
        save_individual_parts=True,
    )


def test_result_fields_follow_the_spec(spot_uv: ModelOutput) -> None:
    result = spot_uv.result
    info = result["uv_info"]
    assert result["num_components"] == info["num_uv_components"] == len(info["components_info"])
    assert info["model"] == "xatlas_uv_unwrapping" and info["pack_method"] == "blender"
    assert info["distortion_threshold"] == 1.25 and info["num_parts"] == 1
    assert 1.0 <= result["distortion"] == info["final_distortion"] <= 1.25
    assert {"chart_id", "num_faces", "distortion"} <= set(info["components_info"][0])
    assert sum(c["num_faces"] for c in info["components_info"]) == 5856
    assert info["charts_over_threshold"] == [] and 0.5 < info["atlas_utilization"] <= 1.0
    assert spot_uv.generation_info["distortion_metric"]
    assert spot_uv.generation_info["mirrored_charts"] == 0  # one handedness for tangents


def test_every_chart_is_under_the_threshold(spot_uv: ModelOutput) -> None:
    charts = spot_uv.result["uv_info"]["components_info"]
    assert max(c["distortion"] for c in charts) <= 1.25
    assert min(c["distortion"] for c in charts) >= 1.0


def test_glb_loads_back_with_uvs_in_the_unit_square(spot_uv: ModelOutput) -> None:
    scene = trimesh.load(io.BytesIO(_file(spot_uv, "uv_mesh.glb")), file_type="glb")
    mesh = next(iter(scene.geometry.values()))
    assert len(mesh.faces) == 5856 and mesh.visual.uv is not None
    assert mesh.visual.uv.min() >= 0.0 and mesh.visual.uv.max() <= 1.0


def test_packed_charts_do_not_overlap(spot_uv: ModelOutput) -> None:
    scene = trimesh.load(io.BytesIO(_file(spot_uv, "uv_mesh.glb")), file_type="glb")
    mesh = next(iter(scene.geometry.values()))
    charts = np.asarray(json.loads(_file(spot_uv, "uv_charts.json"))["face_chart"])
    size = 512
    coverage = np.zeros((size, size), dtype=np.int32)
    for chart in np.unique(charts):
        mask = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(mask)
        for tri in (mesh.visual.uv[mesh.faces[charts == chart]] * size).tolist():
            draw.polygon([tuple(p) for p in tri], fill=1)
        coverage += np.asarray(mask, dtype=np.int32)
    assert (coverage > 1).sum() <= 0.002 * (coverage > 0).sum()  # edge pixels only


def test_part_files_and_layout_picture(spot_uv: ModelOutput) -> None:
    names = [f.filename for f in spot_uv.files]
    assert names[0] == "uv_mesh.glb" and spot_uv.files[0].primary
    assert "uv_part_00.glb" in names and "uv_layout.png" in names
    picture = Image.open(io.BytesIO(_file(spot_uv, "uv_layout.png")))
    assert picture.size == (1024, 1024)


def test_glb_passes_the_khronos_validator(spot_uv: ModelOutput) -> None:
    report = validate_gltf(_file(spot_uv, "uv_mesh.glb"))
    if report is None:
        pytest.skip("node / npm gltf-validator not installed (see gltf_validator.py)")
    assert report["issues"]["numErrors"] == 0, error_messages(report)


def test_tight_threshold_splits_charts_until_under_it(teapot_tight: ModelOutput) -> None:
    info = teapot_tight.result["uv_info"]
    assert info["charts_over_threshold"] == []
    assert max(c["distortion"] for c in info["components_info"]) <= 1.02
    assert info["num_parts"] == 4  # the welded teapot: body, lid, spout, handle
    assert teapot_tight.generation_info["split_rounds"] >= 1
    assert sum(f.filename.startswith("uv_part_") for f in teapot_tight.files) == 4


def test_obj_output_with_grid_layout_loads_back(teapot_tight: ModelOutput) -> None:
    data = _file(teapot_tight, "uv_mesh.obj")
    mesh = trimesh.load(io.BytesIO(data), file_type="obj", process=False, maintain_order=True)
    assert mesh.visual.uv is not None and len(mesh.visual.uv) == len(mesh.vertices)
    assert mesh.visual.uv.min() >= 0.0 and mesh.visual.uv.max() <= 1.0
    assert teapot_tight.result["uv_info"]["pack_method"] == "none"


def test_uvpackmaster_is_a_clear_error(assets_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="UVPackMaster is not installed on this server"):
        _run(tmp_path, assets_dir / "spot.obj", pack_method="uvpackmaster")


def test_threshold_out_of_range_is_rejected(assets_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="distortion_threshold"):
        _run(tmp_path, assets_dir / "spot.obj", distortion_threshold=0.5)


def test_distortion_metric_is_one_for_isometry_and_grows_with_stretch() -> None:
    triangle = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]])
    flat = isometric_layout(triangle)
    same, _, _ = chart_distortion(triangle, flat * 3.0, np.zeros(1, dtype=int), 1)
    assert same[0] == pytest.approx(1.0)
    stretched = flat * np.array([2.0, 1.0])
    value, _, _ = chart_distortion(triangle, stretched, np.zeros(1, dtype=int), 1)
    assert value[0] > 1.05


def test_small_decimated_mesh_has_finite_charts(assets_dir: Path, tmp_path: Path) -> None:
    """A few-centimetre bunny decimated to 20k faces once gave xatlas NaN UVs."""
    import trimesh as tm

    from deployments.base import JobContext
    from deployments.xatlas_uv_unwrapping import XatlasUvUnwrapping

    mesh = tm.load(assets_dir / "stanford-bunny.obj", force="mesh")
    path = tmp_path / "small.obj"
    mesh.simplify_quadric_decimation(face_count=20000).export(path)
    out = XatlasUvUnwrapping().run(
        JobContext("j", 1, tmp_path),
        {"mesh": path},
        {
            "output_format": "obj",
            "distortion_threshold": 1.25,
            "pack_method": "blender",
            "save_individual_parts": False,
            "save_visuals": False,
        },
    )
    assert out.result["distortion"] <= 1.25
    assert all(c["distortion"] <= 1.25 for c in out.result["uv_info"]["components_info"])
