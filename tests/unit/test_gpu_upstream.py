"""The shared base of the upstream GPU adapters: availability, error mapping, seeding,
frames and unsupported-parameter reporting."""

from __future__ import annotations

import os
import random
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobCancelled, ModelInputError, ModelOutOfMemory, ModelSpec
from deployments.upstream import Frame, SharedCache, UpstreamModel, offline_env, unsupported

pytestmark = pytest.mark.unit


class _Fake(UpstreamModel):
    package = "meshforge_fake_upstream_pkg"
    weights_subdir = "fake"
    upstream = "example/fake@0000000"
    spec = ModelSpec(model_id="fake_model", feature="retopology", description="d", method="m")


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


@pytest.fixture
def fake_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    pkg = tmp_path / "src"
    (pkg / "meshforge_fake_upstream_pkg").mkdir(parents=True)
    (pkg / "meshforge_fake_upstream_pkg" / "__init__.py").write_text("")
    return pkg


def _weights(tmp_path: Path) -> Path:
    folder = tmp_path / "weights" / "fake"
    folder.mkdir(parents=True)
    (folder / "model.ckpt").write_bytes(b"x")
    return folder


def test_weights_path_default_and_override(tmp_path: Path) -> None:
    assert _Fake(weights_root=str(tmp_path)).weights_path == tmp_path / "fake"
    assert _Fake(weights_root="x", weights_dir=str(tmp_path / "w")).weights_path == tmp_path / "w"


def test_availability_missing_package(tmp_path: Path) -> None:
    _weights(tmp_path)
    reason = _Fake(weights_root=str(tmp_path / "weights")).availability()
    assert reason is not None
    assert "meshforge_fake_upstream_pkg" in reason and "not installed" in reason


def test_availability_uses_repo_dir_and_checks_weights(tmp_path: Path, fake_package: Path) -> None:
    model = _Fake(weights_root=str(tmp_path / "weights"), repo_dir=str(fake_package))
    reason = model.availability()
    assert reason is not None and "does not exist" in reason
    assert str(fake_package) not in sys.path  # only added while looking
    (tmp_path / "weights" / "fake").mkdir(parents=True)
    reason = model.availability()
    assert reason is not None and "empty" in reason
    (tmp_path / "weights" / "fake" / "model.ckpt").write_bytes(b"x")
    assert model.availability() is None


def test_availability_required_weights(tmp_path: Path, fake_package: Path) -> None:
    class Needs(_Fake):
        required_weights = ("pipeline.json",)

    _weights(tmp_path)
    model = Needs(weights_root=str(tmp_path / "weights"), repo_dir=str(fake_package))
    reason = model.availability()
    assert reason is not None and "pipeline.json" in reason


def test_availability_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(name: str) -> Any:
        raise ValueError("broken")

    monkeypatch.setattr("importlib.util.find_spec", boom)
    assert _Fake().availability() is not None


def test_guarded_maps_oom_and_frees_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    freed: list[bool] = []
    monkeypatch.setattr(UpstreamModel, "free_cuda", staticmethod(lambda: freed.append(True)))
    model = _Fake()
    with pytest.raises(ModelOutOfMemory) as info:
        with model.guarded("sampling"):
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    assert freed == [True]
    assert "fake_model" in info.value.message and "sampling" in info.value.message
    with pytest.raises(ModelOutOfMemory):
        with model.guarded("decoding"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")


def test_guarded_maps_other_errors_and_passes_through() -> None:
    model = _Fake()
    with pytest.raises(ModelInputError) as info:
        with model.guarded("decoding"):
            raise ValueError("bad shape")
    assert info.value.message == "fake_model failed during decoding: bad shape"
    with pytest.raises(JobCancelled):
        with model.guarded("x"):
            raise JobCancelled("job")
    with pytest.raises(ModelInputError) as info2:
        with model.guarded("x"):
            raise ModelInputError("already mapped")
    assert info2.value.message == "already mapped"
    with model.guarded("x"):
        pass


def test_free_cuda_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    UpstreamModel.free_cuda()
    calls: list[str] = []
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        empty_cache=lambda: calls.append("empty"),
        ipc_collect=lambda: calls.append("ipc"),
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    UpstreamModel.free_cuda()
    assert calls == ["empty", "ipc"]


def test_seed_everything_is_reproducible() -> None:
    import torch

    assert UpstreamModel.seed_everything(123) == 123
    a = (random.random(), np.random.rand(), float(torch.rand(1)))
    UpstreamModel.seed_everything(123)
    b = (random.random(), np.random.rand(), float(torch.rand(1)))
    assert a == b
    drawn = UpstreamModel.seed_everything(None)
    assert isinstance(drawn, int) and 0 <= drawn < 2**31


def test_in_repo_dir(tmp_path: Path) -> None:
    before = os.getcwd()
    model = _Fake(repo_dir=str(tmp_path))
    with model.in_repo_dir():
        assert os.getcwd() == str(tmp_path)
        assert str(tmp_path) in sys.path
    assert os.getcwd() == before and str(tmp_path) not in sys.path
    with _Fake().in_repo_dir():
        assert os.getcwd() == before


def test_offline_env_respects_existing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    offline_env()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"


def test_frame_round_trip() -> None:
    mesh = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    mesh.apply_translation((10.0, -3.0, 5.0))
    frame = Frame.of(mesh)
    assert np.allclose(frame.center, (10.0, -3.0, 5.0)) and frame.scale == pytest.approx(2.0)
    unit = frame.normalise(mesh)
    assert np.allclose(unit.bounds, [[-1, -0.5, -0.25], [1, 0.5, 0.25]])
    assert np.allclose(frame.restore(unit).vertices, mesh.vertices)
    assert np.allclose(frame.restore(np.asarray(unit.vertices)), mesh.vertices)
    assert np.allclose(frame.normalise(np.asarray(mesh.vertices)), unit.vertices)
    scene = trimesh.Scene([unit])
    assert np.allclose(frame.restore(scene).bounds, mesh.bounds)
    assert Frame.of(np.zeros((0, 3))).scale == 1.0
    assert Frame.of(np.ones((3, 3))).scale == 1.0  # degenerate: no division by zero


def test_unsupported_reports_only_set_fields() -> None:
    reasons = {"texture_prompt": "no text", "target_face_count": "no", "symmetry": "no"}
    params = {"texture_prompt": "red", "target_face_count": None, "symmetry": True, "seed": 1}
    assert unsupported(params, reasons) == {"texture_prompt": "no text", "symmetry": "no"}
    assert unsupported(params, reasons, defaults={"symmetry": True}) == {
        "texture_prompt": "no text"
    }
    assert unsupported({"texture_prompt": ""}, reasons) == {}


def test_shared_cache_loads_once_and_frees_with_the_last_holder() -> None:
    cache = SharedCache()
    loads: list[int] = []
    a, b = object(), object()

    def loader() -> list[int]:
        loads.append(1)
        return loads

    assert cache.acquire("k", a, loader) is cache.acquire("k", b, loader)
    cache.acquire("k", a, loader)  # the same holder twice counts once
    assert loads == [1] and cache.holders() == {"k": 2}
    assert cache.release("k", a) is False
    assert cache.release("k", b) is True and cache.holders() == {}
    assert cache.release("k", b) is False
    with pytest.raises(RuntimeError):
        cache.acquire("k", a, lambda: (_ for _ in ()).throw(RuntimeError("load failed")))
    assert cache.holders() == {}
