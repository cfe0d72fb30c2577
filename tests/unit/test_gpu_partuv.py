"""partuv_uv_unwrapping against stand-ins of the `partuv` wheel (preprocess, pipeline_numpy,
UVParts/Component results, the vendored PFInferenceModel) and of the Blender packing step
(a stand-in interpreter that records its arguments and writes final_packed.obj)."""

from __future__ import annotations

import io
import json
import stat
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobContext, ModelInputError, ModelOutOfMemory, ModelOutput
from deployments.geometry.mesh_io import load_mesh
from deployments.partuv_uv_unwrapping import CHECKPOINT, PartUvUnwrapping

pytestmark = pytest.mark.unit


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: BaseException | None = None


class Component:
    def __init__(self, V: np.ndarray, F: np.ndarray, UV: np.ndarray, distortion: float) -> None:  # noqa: N803
        self.V, self.F, self.UV, self.distortion = V, F, UV, distortion


class UVParts:
    def __init__(self, components: list[Component]) -> None:
        self.components = components
        self.num_components = len(components)
        self.distortion = float(np.mean([c.distortion for c in components]))

    def to_components(self) -> Component:
        offsets = np.cumsum([0] + [len(c.V) for c in self.components])
        return Component(
            np.vstack([c.V for c in self.components]),
            np.vstack([c.F + o for c, o in zip(self.components, offsets, strict=False)]),
            np.vstack([c.UV for c in self.components]),
            self.distortion,
        )


def _chart(vertices: np.ndarray, faces: np.ndarray) -> Component:
    """Faces as their own chart: split vertices, planar UVs in the unit square."""
    corners = vertices[faces].reshape(-1, 3)
    uv = corners[:, :2] - corners[:, :2].min(axis=0)
    uv = uv / max(float(uv.max()), 1e-9)
    return Component(corners, np.arange(len(corners)).reshape(-1, 3), uv, 1.1)


def _standins(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    run_pf = types.ModuleType("partuv.preprocess_utils.partfield_official.run_PF")

    class PFInferenceModel:
        def __init__(self, cfg_path: Any = None, checkpoint_path: str = "x", device: Any = None):
            rec.calls.append(("PFInferenceModel", (checkpoint_path, device)))

    run_pf.PFInferenceModel = PFInferenceModel  # type: ignore[attr-defined]

    partuv = types.ModuleType("partuv")
    partuv.__path__ = []  # type: ignore[attr-defined]

    def preprocess(mesh_path: str, pf_model: Any, output_path: Any = None, **kw: Any) -> Any:
        if rec.fail is not None:
            raise rec.fail
        rec.calls.append(("preprocess", (mesh_path, kw)))
        mesh: Any = trimesh.load(mesh_path, force="mesh", process=False)
        lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
        # PartField mutates the mesh into its own frame
        mesh.vertices = (mesh.vertices - (lo + hi) / 2) * (0.9 / (hi - lo).max()) + 0.5
        return mesh, None, {0: {"left": 1, "right": 2}}, {"pf": 0.1}

    def pipeline_numpy(V: Any, F: Any, tree_dict: Any, configPath: str, threshold: float = 1.25,  # noqa: N803
                       pack_final_mesh: bool = False) -> Any:  # fmt: skip
        rec.calls.append(("pipeline_numpy", (Path(configPath).read_text(), threshold, tree_dict)))
        centres = V[F].mean(axis=1)
        left = centres[:, 0] < np.median(centres[:, 0])
        charts = [_chart(V, F[left]), _chart(V, F[~left])]
        return UVParts(charts), [UVParts([c]) for c in charts]

    partuv.preprocess = preprocess  # type: ignore[attr-defined]
    partuv.pipeline_numpy = pipeline_numpy  # type: ignore[attr-defined]
    for name in ("partuv.preprocess_utils", "partuv.preprocess_utils.partfield_official"):
        module = types.ModuleType(name)
        module.__path__ = []  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "partuv", partuv)
    monkeypatch.setitem(sys.modules, run_pf.__name__, run_pf)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    _standins(monkeypatch, recorder)
    return recorder


def _blender(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in interpreter for the bpy step: records argv, halves every UV into the
    lower-left quarter (a "packed" layout) and writes the output OBJ."""
    log = tmp_path / "blender_calls.json"
    script = tmp_path / "fake_blender_python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "src, dst = sys.argv[3], sys.argv[4]\n"
        "lines = []\n"
        "for line in open(src):\n"
        "    if line.startswith('vt '):\n"
        "        u, v = map(float, line.split()[1:3])\n"
        "        line = f'vt {u * 0.5} {v * 0.5}\\n'\n"
        "    lines.append(line)\n"
        "open(dst, 'w').writelines(lines)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def _model(tmp_path: Path, **kwargs: Any) -> PartUvUnwrapping:
    folder = tmp_path / "weights" / "partfield"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CHECKPOINT).write_bytes(b"x")
    script, _ = _blender(tmp_path)
    return PartUvUnwrapping(
        weights_root=str(tmp_path / "weights"), device="cpu", blender_python=str(script), **kwargs
    )


def _run(model: PartUvUnwrapping, tmp_path: Path, mesh: Path, **params: Any) -> ModelOutput:
    work = tmp_path / "job"
    work.mkdir(exist_ok=True)
    stages: list[float] = []
    ctx = JobContext("job_uv", 1, work, on_progress=lambda _s, f: stages.append(f))
    full = {"output_format": "obj", "distortion_threshold": 1.25, "pack_method": "blender",
            "save_individual_parts": True, "save_visuals": False, **params}  # fmt: skip
    out = model.run(ctx, {"mesh": mesh}, full)
    assert stages == sorted(stages)
    return out


def _load(data: bytes, fmt: str = "obj") -> Any:
    return trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=False)


def test_availability(tmp_path: Path) -> None:
    reason = PartUvUnwrapping(weights_root=str(tmp_path)).availability()
    assert reason is not None and "partuv" in reason
    model = PartUvUnwrapping(weights_root=str(tmp_path))
    model._find = lambda name: True  # type: ignore[method-assign]
    (tmp_path / "partfield").mkdir()
    (tmp_path / "partfield" / "readme").write_text("x")
    reason = model.availability()
    assert reason is not None and CHECKPOINT in reason


def test_unwrap_pack_and_restore_frame(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    model = _model(tmp_path)
    model.load()
    checkpoint, device = next(c[1] for c in rec.calls if c[0] == "PFInferenceModel")
    assert checkpoint == str(tmp_path / "weights" / "partfield" / CHECKPOINT) and device == "cpu"
    source = assets_dir / "suzanne.obj"
    out = _run(model, tmp_path, source, distortion_threshold=2.0, save_visuals=True)
    config, threshold, tree = next(c[1] for c in rec.calls if c[0] == "pipeline_numpy")
    assert threshold == 2.0 and "threshold: 2.0" in config and "pamo: false" in config
    assert tree == {0: {"left": 1, "right": 2}}
    _, kwargs = next(c[1] for c in rec.calls if c[0] == "preprocess")
    assert kwargs["sample_on_faces"] == 10 and kwargs["save_tree_file"] is False

    calls = [json.loads(x) for x in (tmp_path / "blender_calls.json").read_text().splitlines()]
    assert len(calls) == 1 and calls[0][0] == "-c" and "pack_islands" in calls[0][1]
    assert calls[0][2].endswith("final_components.obj") and calls[0][4] == "0.001"

    primary = out.files[0]
    assert primary.primary and primary.filename == "uv_mesh_packed.obj"
    mesh = _load(primary.data)
    original = load_mesh(source)
    assert np.allclose(mesh.bounds, original.bounds, atol=1e-4)  # input frame and scale
    uv = mesh.visual.uv
    assert uv is not None and uv.min() >= 0 and uv.max() <= 0.5 + 1e-6  # packed layout
    names = [f.filename for f in out.files]
    assert "uv_charts.json" in names and "uv_layout.png" in names
    assert "uv_part_00.obj" in names and "uv_part_01.obj" in names
    part = _load(next(f.data for f in out.files if f.filename == "uv_part_00.obj"))
    assert (part.bounds[0] >= original.bounds[0] - 1e-4).all()
    assert (part.bounds[1] <= original.bounds[1] + 1e-4).all()
    info = out.result["uv_info"]
    assert out.result["num_components"] == 2 and info["num_uv_components"] == 2
    assert info["pack_method"] == "blender" and info["distortion_threshold"] == 2.0
    assert sum(c["num_faces"] for c in info["components_info"]) == len(original.faces)
    assert out.result["distortion"] == pytest.approx(1.1)
    assert out.generation_info["upstream"].startswith("EricWang12/PartUV")
    assert len(out.preview.faces) == len(original.faces)


def test_no_packing_glb(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    model = _model(tmp_path)
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", pack_method="none",
               output_format="glb", save_individual_parts=False)  # fmt: skip
    assert not (tmp_path / "blender_calls.json").exists()
    assert [f.filename for f in out.files] == ["uv_mesh.glb", "uv_charts.json"]
    mesh = _load(out.files[0].data, "glb")
    assert np.allclose(mesh.bounds, load_mesh(assets_dir / "suzanne.obj").bounds, atol=1e-4)
    assert "none" in out.generation_info["packing"]


def test_uvpackmaster_refused(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    with pytest.raises(ModelInputError, match="UVPackMaster"):
        _run(_model(tmp_path), tmp_path, assets_dir / "suzanne.obj", pack_method="uvpackmaster")


def test_pack_failure_and_upstream_errors(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    failing = tmp_path / "failing_python"
    failing.write_text(f"#!{sys.executable}\nimport sys\nprint('bpy exploded')\nsys.exit(3)\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    model = _model(tmp_path)
    model.blender_python = str(failing)
    with pytest.raises(ModelInputError, match="bpy exploded"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    rec.fail = OutOfMemoryError("CUDA out of memory")
    with pytest.raises(ModelOutOfMemory):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    rec.fail = RuntimeError("non-manifold")
    with pytest.raises(ModelInputError, match="partuv_uv_unwrapping failed during preprocessing"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
