"""The HoloPart adapter against stand-ins of upstream: part inputs (scene nodes, face-colour
labels, a previous segmentation job's output), the normalised frame and its inverse,
upstream arguments, progress and failures."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobCancelled, JobContext, ModelInputError, ModelOutOfMemory
from deployments.geometry.segment import segments_to_scene
from deployments.holopart_part_completion import HoloPartPartCompletion, split_parts
from deployments.registry import model_class
from deployments.upstream import UpstreamModel
from tests.unit.standins import holopart_upstream as standin
from tests.unit.test_model_gen_support import primary, run_model


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> standin.Recorder:
    return standin.install(monkeypatch)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    folder = tmp_path / "weights" / "HoloPart"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    return tmp_path / "weights"


def _open_box(extents: tuple[float, float, float], offset: tuple[float, float, float]) -> Any:
    """A box missing its top two faces (an occluded part), moved away from the origin."""
    box = trimesh.creation.box(extents=extents)
    keep = np.ones(len(box.faces), dtype=bool)
    keep[np.argsort(box.triangles_center[:, 1])[-2:]] = False
    box.update_faces(keep)
    box.apply_translation(offset)
    return box


@pytest.fixture
def parts_scene(tmp_path: Path) -> tuple[Path, trimesh.Scene]:
    """Two parts far from the origin and much larger than the unit cube; one node carries
    a transform, as segmentation scenes may."""
    scene = trimesh.Scene()
    scene.add_geometry(
        _open_box((20.0, 10.0, 10.0), (100.0, 0.0, 0.0)), node_name="seat", geom_name="seat"
    )
    moved = np.eye(4)
    moved[:3, 3] = (100.0, 20.0, 0.0)
    scene.add_geometry(
        _open_box((6.0, 30.0, 6.0), (0.0, 0.0, 0.0)),
        node_name="leg",
        geom_name="leg",
        transform=moved,
    )
    path = tmp_path / "parts.glb"
    scene.export(path)
    return path, scene


def _loaded(weights: Path, **options: Any) -> HoloPartPartCompletion:
    model = HoloPartPartCompletion(weights_root=str(weights), device="cpu", **options)
    model.load()
    return model


def _scene(data: bytes) -> trimesh.Scene:
    loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="scene")
    assert isinstance(loaded, trimesh.Scene)
    return loaded


def test_registry_and_spec() -> None:
    assert model_class("holopart_part_completion") is HoloPartPartCompletion
    spec = HoloPartPartCompletion.spec
    assert spec.vram_mb == 10240 and spec.feature == "part_completion"
    assert "headroom" in spec.details["vram_note"]


def test_availability(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = HoloPartPartCompletion(weights_root=str(weights)).availability()
    assert reason is not None and "'holopart'" in reason
    standin.install(monkeypatch)
    assert HoloPartPartCompletion(weights_root=str(weights)).availability() is None
    reason = HoloPartPartCompletion(weights_root=str(tmp_path / "none")).availability()
    assert reason is not None and "does not exist" in reason


def test_load_uses_local_weights_in_fp16(recorder: standin.Recorder, weights: Path) -> None:
    import torch

    _loaded(weights)
    (call,) = recorder.named("from_pretrained")
    assert call["path"] == str(weights / "HoloPart")
    (to,) = recorder.named("to")
    assert to["args"] == ("cpu", torch.float16)


def test_scene_parts_completed_in_the_input_frame(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, parts_scene: Any
) -> None:
    path, scene = parts_scene
    model = _loaded(weights, num_inference_steps=6, batch_size=1)
    stages: list[str] = []
    ctx = JobContext("job", 1, tmp_path, on_progress=lambda s, f: stages.append(s))
    out = model.run(ctx, {"mesh": path}, {"output_format": "glb", "seed": 21})
    # Upstream saw one geometry per part, in one frame inside [-0.95, 0.95].
    (prep,) = recorder.named("prepare_data")
    upstream_scene = prep["scene"]
    assert sorted(upstream_scene.geometry) == ["leg", "seat"]
    assert np.abs(upstream_scene.bounds).max() == pytest.approx(0.95, abs=1e-6)
    (call,) = recorder.named("run_holopart")
    assert call["seed"] == 21 and call["num_inference_steps"] == 6
    assert call["guidance_scale"] == 3.5 and call["batch_size"] == 1
    assert call["use_flash_decoder"] is True and call["flash_octree_depth"] == 9
    assert [c["generator_seed"] for c in recorder.named("pipe")] == [21, 21]  # 2 batches
    # Completed parts: named after the inputs, watertight, back where the parts were.
    result = _scene(primary(out))
    assert sorted(result.geometry) == ["leg", "seat"]
    originals = dict(split_parts(scene)[0])
    for node in result.graph.nodes_geometry:
        transform, name = result.graph[node]
        part = result.geometry[name].copy()
        part.apply_transform(transform)
        assert part.is_watertight
        # Within 1 % of the part's size: the completion is rebuilt from random surface
        # samples (as upstream's is), so a corner may fall a hair inside; a wrong frame
        # (scale or offset) would miss by far more.
        original = originals[str(name)]
        tolerance = 0.01 * float(original.extents.max())
        assert np.allclose(part.bounds, original.bounds, atol=tolerance)
    assert sum("denoising" in s for s in stages) == 12
    assert sum("decoding part" in s for s in stages) == 2
    info = out.generation_info
    assert info["part_source"] == "scene nodes" and info["parts"] == 2
    assert info["seed"] == 21 and info["upstream"].startswith("VAST-AI-Research/HoloPart")
    completion = out.result["completion_info"]["parts"]
    assert {p["part"] for p in completion} == {"leg", "seat"}
    assert all(p["watertight_after"] for p in completion)
    assert isinstance(out.preview, trimesh.Scene)


def test_segmentation_job_output_is_accepted(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, assets_dir: Path
) -> None:
    """The GLB a segmentation job writes (one coloured node per part) completes part by
    part, keeping each part's colour."""
    mesh: Any = trimesh.load(assets_dir / "teapot.obj", force="mesh")
    labels = (mesh.triangles_center[:, 0] > mesh.centroid[0]).astype(int)
    scene = segments_to_scene(mesh, labels)
    path = tmp_path / "segmented.glb"
    scene.export(path)
    out = run_model(_loaded(weights), tmp_path, {"mesh": path}, seed=1)
    result = _scene(primary(out))
    assert sorted(result.geometry) == ["part_00", "part_01"]
    colors = {
        name: tuple(np.asarray(g.visual.face_colors)[0][:3])
        for name, g in out.preview.geometry.items()
    }
    expected = {
        name: tuple(np.asarray(g.visual.face_colors)[0][:3]) for name, g in scene.geometry.items()
    }
    assert colors == expected


def test_single_mesh_with_face_colour_labels(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    a = _open_box((2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    b = _open_box((1.0, 3.0, 1.0), (3.0, 0.0, 0.0))
    a.visual = trimesh.visual.ColorVisuals(a, face_colors=(255, 0, 0, 255))
    b.visual = trimesh.visual.ColorVisuals(b, face_colors=(0, 0, 255, 255))
    flat = trimesh.util.concatenate([a, b])
    path = tmp_path / "flat.ply"
    flat.export(path)
    out = run_model(_loaded(weights), tmp_path, {"mesh": path}, output_format="obj")
    (prep,) = recorder.named("prepare_data")
    assert len(prep["scene"].geometry) == 2
    assert out.generation_info["part_source"] == "face colours of a single mesh"
    assert out.files[0].filename == "completed_mesh.obj"


def test_plain_single_mesh_is_one_part(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, assets_dir: Path
) -> None:
    out = run_model(_loaded(weights), tmp_path, {"mesh": assets_dir / "suzanne.obj"})
    (prep,) = recorder.named("prepare_data")
    assert len(prep["scene"].geometry) == 1
    assert out.generation_info["part_source"] == "single mesh (one part)"
    source = trimesh.load(assets_dir / "suzanne.obj", force="mesh")
    result = trimesh.load(io.BytesIO(primary(out)), file_type="glb", force="mesh")
    assert np.allclose(result.bounds, source.bounds, atol=0.05)


def test_unsupported_fields_reported(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, parts_scene: Any
) -> None:
    out = run_model(_loaded(weights), tmp_path, {"mesh": parts_scene[0]}, symmetry=True)
    assert set(out.generation_info["unsupported_parameters"]) == {"symmetry"}


def test_out_of_memory(
    recorder: standin.Recorder,
    weights: Path,
    tmp_path: Path,
    parts_scene: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    freed: list[bool] = []
    monkeypatch.setattr(UpstreamModel, "free_cuda", staticmethod(lambda: freed.append(True)))
    recorder.fail["pipe"] = standin.OutOfMemoryError("CUDA out of memory")
    model = _loaded(weights)
    with pytest.raises(ModelOutOfMemory):
        run_model(model, tmp_path, {"mesh": parts_scene[0]})
    assert freed
    import sys

    script = sys.modules["scripts.inference_holopart"]
    assert script.flash_extract_geometry is standin.flash_extract_geometry  # unpatched
    assert "step" not in vars(model._pipe.scheduler)


def test_upstream_error_and_bad_input(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, parts_scene: Any
) -> None:
    recorder.fail["flash_extract_geometry"] = RuntimeError("octree empty")
    model = _loaded(weights)
    with pytest.raises(ModelInputError, match="holopart_part_completion failed during part"):
        run_model(model, tmp_path, {"mesh": parts_scene[0]})
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF nonsense")
    with pytest.raises(ModelInputError, match="Cannot read the input mesh"):
        run_model(model, tmp_path, {"mesh": bad})


def test_cancellation(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, parts_scene: Any
) -> None:
    model = _loaded(weights, num_inference_steps=5)
    ctx = JobContext("job", 1, tmp_path)

    def cancel(stage: str, fraction: float) -> None:
        if "step 2/" in stage:
            ctx.cancelled.set()

    ctx._on_progress = cancel
    with pytest.raises(JobCancelled):
        model.run(ctx, {"mesh": parts_scene[0]}, {"output_format": "glb", "seed": 1})
    assert recorder.named("flash_extract_geometry") == []
