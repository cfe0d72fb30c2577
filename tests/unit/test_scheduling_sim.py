"""The simulator drives the real scheduler: our policy never overcommits VRAM."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SIM_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "scheduler_sim.py"


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scheduler_sim", SIM_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scheduler_sim"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_our_policy_never_overcommits_and_finishes_every_job(sim: ModuleType, seed: int) -> None:
    workload = sim.make_workload(seed, 150, 4, "60%")
    ours, fifo, autoscale, pooled = sim.run_all(workload, "4x24576", 64, 5.0, 60.0)
    assert ours.name == "ours"
    assert ours.overcommits == 0
    assert ours.unfinished == 0 and ours.rejected == 0
    assert len(ours.latencies) == 150
    assert sim.p95(fifo.latencies) >= 2 * sim.p95(ours.latencies)


def test_small_gpus_reject_what_cannot_fit(sim: ModuleType) -> None:
    workload = sim.make_workload(4, 120, 2, "50%")
    ours = sim.run_all(workload, "2x16384", 512, 5.0, 60.0)[0]
    too_big = sum(1 for j in workload.jobs if workload.vram_mib[j.model_id] > 16384 - 512)
    assert ours.rejected == too_big and ours.overcommits == 0 and ours.unfinished == 0


def test_trace_replay_and_table(
    sim: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"arrival_s": 0, "model_id": "fastmesh_v4k_retopology", "service_s": 60},
        {"arrival_s": 1, "model_id": "unirig_auto_rig", "service_s": 30, "owner": "bob"},
        {"arrival_s": 2, "model_id": "custom", "service_s": 40, "vram_mib": 9000, "load_s": 5},
    ]
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(rows))
    sim.main(["--trace", str(trace), "--gpus", "2x24576"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == "policy"
    assert "p95(fifo) / p95(ours)" in out
    ours_row = next(line for line in out.splitlines() if line.startswith("ours "))
    assert ours_row.split()[7] == "0"  # overcommits
