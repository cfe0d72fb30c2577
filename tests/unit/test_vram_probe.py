"""benchmarks/vram_probe.py: a clear exit without a GPU, its reference jobs, its measuring
loop (against stand-ins for NVML and torch.cuda) and its rules."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trimesh

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "vram_probe.py"
ASSETS = ROOT.parent / "shared" / "assets"
MIB = 1024 * 1024


def _load_probe() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("vram_probe", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vram_probe"] = module
    spec.loader.exec_module(module)
    return module


probe = _load_probe()


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return bool(pynvml.nvmlDeviceGetCount())
    except Exception:
        return False


# --- no GPU ---------------------------------------------------------------------------


@pytest.mark.skipif(_nvml_works(), reason="this host has a GPU")
@pytest.mark.parametrize("args", [["--baseline"], [], ["--models", "unirig_auto_rig"]])
def test_without_a_gpu_the_script_exits_with_one_clear_line(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json", ""],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == probe.NO_GPU_EXIT
    assert "Traceback" not in done.stderr
    assert "no usable GPU" in done.stderr
    assert done.stdout == ""


class _NvmlStandIn(types.ModuleType):
    """pynvml as it behaves on a host without the NVIDIA driver."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's name
        raise self.NVMLError("NVML Shared Library Not Found")


def test_main_reports_a_missing_driver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _NvmlStandIn("pynvml"))
    assert probe.main(["--baseline", "--json", ""]) == probe.NO_GPU_EXIT
    err = capsys.readouterr().err
    assert "NVML cannot start" in err and "no NVIDIA driver" in err


def test_main_reports_torch_without_cuda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nvml = _FakeNvml(pid=os.getpid())
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    torch = types.ModuleType("torch")
    torch.__version__ = "2.4.0+cpu"  # type: ignore[attr-defined]
    torch.version = types.SimpleNamespace(cuda=None)  # type: ignore[attr-defined]
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert probe.main(["--json", ""]) == probe.NO_GPU_EXIT
    assert "cannot use CUDA" in capsys.readouterr().err


# --- rules ----------------------------------------------------------------------------


def test_rules_match_the_gpu_profile() -> None:
    assert probe.gpu_fraction(4096) == 0.2
    assert probe.gpu_fraction(12288) == 0.5
    assert probe.gpu_fraction(24500) == 1.0
    assert probe.suggested_vram_mb(5000.0, 500.0, 3000.0) == 5120
    # A peak shorter than the sampling interval still counts through torch's reserve.
    assert probe.suggested_vram_mb(1000.0, 500.0, 3000.0) == 3584
    assert probe.suggested_vram_mb(None, 0.0, 0.0) == 0


# --- reference jobs -------------------------------------------------------------------


@pytest.mark.parametrize("feature", sorted(probe.REFERENCE))
def test_reference_job_of_every_feature(feature: str, tmp_path: Path) -> None:
    from meshforge.features import FEATURES

    params = probe.job_params(feature)
    assert params["output_format"] == FEATURES[feature].default_output_format
    assert "model_preference" not in params
    inputs = probe.reference_inputs(feature, ASSETS, tmp_path)
    assert set(inputs) == set(probe.REFERENCE[feature][1])
    for path in inputs.values():
        assert path.is_file()
    if feature == "part_completion":
        scene = trimesh.load(inputs["mesh"])
        assert isinstance(scene, trimesh.Scene) and len(scene.geometry) >= 2
    if "image" in inputs:
        from PIL import Image

        assert Image.open(inputs["image"]).size == (512, 512)


def test_every_gpu_feature_has_a_reference_job() -> None:
    from meshforge.features import FEATURES

    assert set(probe.REFERENCE) == set(FEATURES)
    assert probe.missing_assets(ASSETS, set(FEATURES)) == []
    assert probe.missing_assets(Path("/nonexistent"), {"auto_rig"}) == ["cheburashka.obj"]


# --- the measuring loop against stand-ins -----------------------------------------------


class _FakeNvml(types.ModuleType):
    """NVML stand-in: one GPU whose per-process usage the test sets."""

    class NVMLError(Exception):
        pass

    def __init__(self, pid: int, visible: bool = True) -> None:
        super().__init__("pynvml")
        self.pid, self.visible = pid, visible
        self.used = 0
        self.device_used = 1000 * MIB

    def nvmlInit(self) -> None:  # noqa: N802
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return "Stand-in GPU"

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "0.0"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:  # noqa: N802
        return types.SimpleNamespace(total=24576 * MIB, used=self.device_used + self.used)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:  # noqa: N802
        if not self.used:
            return []
        pid = self.pid if self.visible else 999_999
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=self.used)]


class _FakeCuda:
    def __init__(self, nvml: _FakeNvml) -> None:
        self.nvml = nvml
        self.allocated_peak = 0
        self.resets = 0

    def init(self) -> None:
        self.nvml.used = 300 * MIB  # the CUDA context

    def synchronize(self) -> None:
        pass

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1

    def max_memory_allocated(self) -> int:
        return self.allocated_peak

    def max_memory_reserved(self) -> int:
        return self.allocated_peak + 64 * MIB

    def empty_cache(self) -> None:
        pass

    def is_available(self) -> bool:
        return True


class _Conn:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, obj: Any) -> None:
        self.sent.append(obj)


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> tuple[_FakeNvml, _FakeCuda]:
    nvml = _FakeNvml(pid=os.getpid())
    cuda = _FakeCuda(nvml)
    torch = types.ModuleType("torch")
    torch.cuda = cuda  # type: ignore[attr-defined]
    torch.zeros = lambda *a, **k: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return nvml, cuda


def _task(model_id: str, tmp_path: Path) -> Any:
    from deployments.registry import model_class

    feature = model_class(model_id).spec.feature
    inputs = probe.reference_inputs(feature, ASSETS, tmp_path)
    return probe.Task(
        model_id,
        feature,
        {},
        {k: str(v) for k, v in inputs.items()},
        probe.job_params(feature),
        model_class(model_id).spec.vram_mb,
    )


def test_probe_loop_fills_a_row_per_model(
    stand_ins: tuple[_FakeNvml, _FakeCuda], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml, cuda = stand_ins
    from deployments.registry import model_class

    cls = model_class("quadric_retopology")
    real_load, real_run = cls.load, cls.run

    def load(self: Any) -> None:
        real_load(self)
        nvml.used = 2300 * MIB  # weights resident

    def run(self: Any, ctx: Any, inputs: Any, params: Any) -> Any:
        nvml.used = 5300 * MIB  # working memory during the run
        cuda.allocated_peak = 4000 * MIB
        out = real_run(self, ctx, inputs, params)
        nvml.used = 2300 * MIB
        return out

    monkeypatch.setattr(cls, "load", load)
    monkeypatch.setattr(cls, "run", run)

    def unload(self: Any) -> None:
        nvml.used = 300 * MIB

    monkeypatch.setattr(cls, "unload", unload)
    conn = _Conn()
    tasks = [_task("quadric_retopology", tmp_path)]
    probe._probe_models(conn, tasks, 0, 0.001, False)
    assert conn.sent[-1] is None
    row = probe.Row(**conn.sent[0])
    assert row.status == "ok", row.detail
    assert row.method == "nvml-pid"
    assert row.context_mib == 300.0
    assert row.nvml_load_peak_mib == 2300.0
    assert row.nvml_peak_mib == 5300.0
    assert row.torch_alloc_peak_mib == 4000.0
    assert row.torch_reserved_peak_mib == 4064.0
    assert row.after_unload_mib == 300.0
    assert row.suggested_vram_mb == 5376  # 5300 rounded up to 256 MiB
    assert row.suggested_num_gpus == 0.25
    assert row.load_s is not None and row.run_s is not None
    assert row.stages, "progress stages of the run are recorded"
    assert cuda.resets == 1


def test_probe_loop_reports_unavailable_and_failing_models(
    stand_ins: tuple[_FakeNvml, _FakeCuda], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.registry import model_class

    unavailable = model_class("quadric_retopology")
    failing = model_class("spectral_mesh_segmentation")
    monkeypatch.setattr(unavailable, "availability", lambda self: "weights folder is missing")

    def boom(self: Any, ctx: Any, inputs: Any, params: Any) -> Any:
        raise RuntimeError("upstream exploded")

    monkeypatch.setattr(failing, "run", boom)
    conn = _Conn()
    tasks = [_task("quadric_retopology", tmp_path), _task("spectral_mesh_segmentation", tmp_path)]
    probe._probe_models(conn, tasks, 0, 0.001, False)
    first, second = (probe.Row(**m) for m in conn.sent[:2])
    assert (first.status, first.detail) == ("unavailable", "weights folder is missing")
    assert second.status == "failed" and "upstream exploded" in second.detail
    table = probe.models_markdown(
        {"index": 0, "name": "g", "total_mib": 1, "driver": "d", "torch": "t"}
        | {"torch_cuda": "c", "python": "p"},
        [first, second],
        False,
    )
    assert "unavailable: weights folder is missing" in table
    assert "failed: RuntimeError: upstream exploded" in table


def test_without_a_pid_match_the_device_delta_is_used(
    stand_ins: tuple[_FakeNvml, _FakeCuda],
) -> None:
    nvml, _ = stand_ins
    nvml.visible = False  # a container: NVML reports host pids
    memory = probe.ProcessMemory(0, 0.01)
    nvml.used = 700 * MIB
    assert memory.sample() == 700 * MIB
    assert memory.method == "device-delta"


def test_baseline_table_states_ratios() -> None:
    result = {
        "method": "nvml-pid",
        "params_mib": 1024.0,
        "rows": [
            {"what": "ctx", "expected_mib": None, "torch_allocated_mib": 0.0}
            | {"torch_reserved_mib": 2.0, "nvml_mib": 500.0},
            {"what": "params", "expected_mib": 1024.0, "torch_allocated_mib": 1024.0}
            | {"torch_reserved_mib": 1026.0, "nvml_mib": 1528.0},
        ],
    }
    gpu = {"index": 0, "name": "g", "total_mib": 1, "driver": "d", "torch": "t"}
    table = probe.baseline_markdown(gpu, result)
    assert "| params | 1024.0 | 1024.0 | 1026.0 | 1528.0 | 1.000 | 1028.0 |" in table
