"""fastmesh_v1k/v4k_retopology against stand-ins of FastMesh's `models.MODELS` (a
PyTorchModelHubMixin `from_pretrained`) and accelerate's Accelerator / set_seed."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobContext, ModelInputError, ModelOutOfMemory, ModelOutput
from deployments.fastmesh_retopology import FastMeshV1KRetopology, FastMeshV4KRetopology
from deployments.geometry.mesh_io import load_mesh

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.unit


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: BaseException | None = None
        self.empty = False


def _standins(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    class MeshGen:
        def __init__(self, path: str) -> None:
            self.path = path

        @classmethod
        def from_pretrained(cls, path: str, **kwargs: Any) -> MeshGen:
            rec.calls.append(("from_pretrained", (path, kwargs)))
            return cls(path)

        def eval(self) -> MeshGen:
            return self

        def __call__(self, data: dict[str, Any], is_eval: bool = False) -> list[Any]:
            if rec.fail is not None:
                raise rec.fail
            pc = data["pc_normal"]
            rec.calls.append(("forward", (tuple(pc.shape), pc.dtype, is_eval, self.path)))
            if rec.empty:
                return []
            points = pc[0, :, :3].float().numpy() * (0.5 / 0.95)  # quantised cube
            return [trimesh.convex.convex_hull(points)]

    models = types.ModuleType("models")
    models.MODELS = {"MeshGen": MeshGen}  # type: ignore[attr-defined]

    class Accelerator:
        def __init__(self, mixed_precision: str = "no") -> None:
            rec.calls.append(("Accelerator", mixed_precision))

        def prepare(self, model: Any) -> Any:
            return model

        @contextmanager
        def autocast(self) -> Iterator[None]:
            rec.calls.append(("autocast", None))
            yield

    accelerate = types.ModuleType("accelerate")
    accelerate.__path__ = []  # type: ignore[attr-defined]
    accelerate.Accelerator = Accelerator  # type: ignore[attr-defined]
    utils = types.ModuleType("accelerate.utils")
    utils.set_seed = lambda seed, **kw: rec.calls.append(("set_seed", seed))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "models", models)
    monkeypatch.setitem(sys.modules, "accelerate", accelerate)
    monkeypatch.setitem(sys.modules, "accelerate.utils", utils)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    _standins(monkeypatch, recorder)
    return recorder


def _weights(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    for variant in ("FastMesh-V1K", "FastMesh-V4K"):
        (root / variant).mkdir(parents=True)
        (root / variant / "config.json").write_text("{}")
        (root / variant / "model.safetensors").write_bytes(b"x")
    return root


def _run(model: Any, tmp_path: Path, mesh: Path, **params: Any) -> ModelOutput:
    stages: list[float] = []
    ctx = JobContext("job_fm", 1, tmp_path, on_progress=lambda _s, f: stages.append(f))
    out: ModelOutput = model.run(ctx, {"mesh": mesh}, {"output_format": "obj", **params})
    assert stages == sorted(stages)
    return out


def test_availability(tmp_path: Path) -> None:
    reason = FastMeshV4KRetopology(weights_root=str(tmp_path)).availability()
    assert reason is not None and "models" in reason
    model = FastMeshV4KRetopology(weights_root=str(tmp_path))
    model._find = lambda name: True  # type: ignore[method-assign]
    reason = model.availability()
    assert reason is not None and "FastMesh-V4K" in reason


@pytest.mark.parametrize(
    ("cls", "folder", "variant"),
    [
        (FastMeshV1KRetopology, "FastMesh-V1K", "V1K"),
        (FastMeshV4KRetopology, "FastMesh-V4K", "V4K"),
    ],
)
def test_variant_loads_its_own_weights(
    tmp_path: Path, rec: Recorder, assets_dir: Path, cls: Any, folder: str, variant: str
) -> None:
    root = _weights(tmp_path)
    model = cls(weights_root=str(root), device="cpu")
    model.load()
    path, kwargs = next(c[1] for c in rec.calls if c[0] == "from_pretrained")
    assert path == str(root / folder) and kwargs == {"local_files_only": True}
    assert ("Accelerator", "fp16") in rec.calls
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", seed=5)
    shape, dtype, is_eval, used = next(c[1] for c in rec.calls if c[0] == "forward")
    assert shape == (1, 8192, 6) and dtype == torch.float16 and is_eval
    assert used == str(root / folder)
    assert ("set_seed", 5) in rec.calls and ("autocast", None) in rec.calls
    assert out.result["retopology_info"]["variant"] == variant
    assert out.result["retopology_info"]["model"] == cls.spec.model_id
    assert out.generation_info["variant"] == variant
    assert out.generation_info["weights"] == folder


def test_output_restored_to_input_frame(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    model = FastMeshV1KRetopology(weights_root=str(_weights(tmp_path)), device="cpu")
    source = assets_dir / "suzanne.obj"
    out = _run(model, tmp_path, source, output_format="glb")
    data = out.files[0].data
    result: Any = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
    original = load_mesh(source)
    extent = np.ptp(original.bounds, axis=0).max()
    assert np.allclose(result.bounds.mean(axis=0), original.bounds.mean(axis=0), atol=1e-3 * extent)
    assert np.isclose(np.ptp(result.bounds, axis=0).max(), extent, rtol=1e-3)
    assert out.files[0].filename == "retopo_mesh.glb" and out.files[0].primary
    stats = out.result["output_stats"]
    assert stats == {"vertices": len(result.vertices), "faces": len(result.faces)}
    assert out.result["original_stats"]["faces"] == len(original.faces)
    assert out.generation_info["frame"]["restored"] is True
    assert "unsupported_parameters" not in out.generation_info
    assert out.preview is not None


@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_formats_and_unsupported_target(
    tmp_path: Path, rec: Recorder, assets_dir: Path, fmt: str
) -> None:
    model = FastMeshV4KRetopology(weights_root=str(_weights(tmp_path)), device="cpu")
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", output_format=fmt,
               target_vertex_count=1234)  # fmt: skip
    loaded: Any = trimesh.load(io.BytesIO(out.files[0].data), file_type=fmt, force="mesh")
    assert len(loaded.faces) > 0
    ignored = out.generation_info["unsupported_parameters"]
    assert "target_vertex_count" in ignored and "4000" in ignored["target_vertex_count"]
    assert out.generation_info["requested_target_vertex_count"] == 1234


def test_default_seed(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    model = FastMeshV1KRetopology(weights_root=str(_weights(tmp_path)), device="cpu")
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", seed=None)
    assert ("set_seed", 42) in rec.calls and out.result["retopology_info"]["seed"] == 42


def test_failures(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    model = FastMeshV1KRetopology(weights_root=str(_weights(tmp_path)), device="cpu")
    rec.empty = True
    with pytest.raises(ModelInputError, match="generated no mesh"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    rec.empty = False
    rec.fail = OutOfMemoryError("CUDA out of memory")
    with pytest.raises(ModelOutOfMemory):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    rec.fail = KeyError("flash_attention_2")
    with pytest.raises(ModelInputError, match="fastmesh_v1k_retopology failed during generation"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
