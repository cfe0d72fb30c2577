"""The job manager's GPU path without Ray: the scheduler's decisions applied through fake
load/unload hooks, replicas reporting where they sit, and a replica lost mid-job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from meshforge.errors import BadRequest, Conflict, InsufficientVram, ModelNotAvailable
from meshforge.job_manager import JobManagerCore
from meshforge.settings import Settings
from persistence import jobs as job_db
from persistence.db import migrate
from persistence.models import Job
from scheduling import GpuInfo

NODE = "node-a"
DEPLOYMENTS: dict[str, Any] = {
    "big_a": {"models": ["big_a"], "vram_mb": 16000, "max_concurrency": 1},
    "big_b": {"models": ["big_b"], "vram_mb": 14000, "max_concurrency": 1},
    "family": {"models": ["fam_text", "fam_image"], "vram_mb": 4000, "max_concurrency": 1},
    "huge": {"models": ["huge"], "vram_mb": 64000, "max_concurrency": 1},
    "cpu": 2,
}


class FakeCluster:
    """Replicas that hold weights by hook and commit their jobs through `finish`."""

    def __init__(self) -> None:
        self.core: JobManagerCore | None = None
        self.loaded: set[str] = set()
        self.ops: list[tuple[str, str]] = []
        self.co_resident: list[set[str]] = []
        self.fail_load: dict[str, Exception] = {}
        self.die: set[str] = set()
        self.gate = asyncio.Event()

    async def load(self, deployment: str) -> None:
        self.ops.append(("load", deployment))
        await asyncio.sleep(0.01)
        if deployment in self.fail_load:
            raise self.fail_load[deployment]
        self.loaded.add(deployment)
        self.co_resident.append(set(self.loaded))

    async def unload(self, deployment: str) -> None:
        self.ops.append(("unload", deployment))
        await asyncio.sleep(0.01)
        self.loaded.discard(deployment)

    def __call__(self, deployment: str, payload: dict[str, Any]) -> Any:
        return asyncio.ensure_future(self._run(deployment, payload))

    async def _run(self, deployment: str, payload: dict[str, Any]) -> dict[str, Any]:
        await self.gate.wait()
        if deployment in self.die:
            self.die.discard(deployment)
            raise RuntimeError("replica died")
        assert self.core is not None
        if deployment != "cpu":
            assert deployment in self.loaded, f"{deployment} ran without its weights"
        ok = self.core.finish(payload["job_id"], payload["attempt"], {"status": "completed"})
        return {"accepted": ok}


def make(tmp_path: Path) -> tuple[JobManagerCore, FakeCluster]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    cluster = FakeCluster()
    core = JobManagerCore(Settings(database_url=url), cluster, DEPLOYMENTS, cluster)
    cluster.core = core
    core.update_gpu(GpuInfo.idle(NODE, 0, 24576))
    core.update_gpu(GpuInfo.idle(NODE, 1, 24576))
    for name, index in (("big_a", 0), ("big_b", 0), ("family", 1), ("huge", 1)):
        core.replica_report(name, f"{name}-r1", (NODE, index), loaded=False, pid=100 + index)
    return core, cluster


def add(core: JobManagerCore, model: str) -> str:
    job = job_db.create_job(core.engine, job=Job(feature="f", model_id=model, output_format="glb"))
    core.submit(job.id)
    return job.id


def status(core: JobManagerCore, job_id: str) -> str:
    return job_db.require_job(core.engine, job_id).status


async def until(check: Any, rounds: int = 3000) -> None:
    for _ in range(rounds):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_alternating_jobs_swap_two_models_that_cannot_share_a_gpu(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, cluster = make(tmp_path)
        core.ensure_started()
        jobs = [add(core, m) for m in ("big_a", "big_b", "big_a", "fam_text", "fam_image")]
        queued = core.queue_info(jobs[1])
        assert queued["queue_position"] == 0 and queued["waiting_reason"] is not None
        cluster.gate.set()
        await until(lambda: all(status(core, j) == "completed" for j in jobs))
        assert not any({"big_a", "big_b"} <= s for s in cluster.co_resident)
        loads = [d for op, d in cluster.ops if op == "load"]
        # Both big_a jobs run on one load (the queued one goes while it is resident), then
        # big_a makes room for big_b.
        assert loads.count("big_a") == 1 and loads.count("big_b") == 1
        assert loads.count("family") == 1  # two models, one deployment, one load
        assert ("unload", "big_a") in cluster.ops
        # Strictly alternating jobs swap every time.
        for model in ("big_a", "big_b"):
            job = add(core, model)
            await until(lambda: status(core, job) == "completed")  # noqa: B023
        loads = [d for op, d in cluster.ops if op == "load"]
        assert loads.count("big_a") == 2 and loads.count("big_b") == 2
        assert not any({"big_a", "big_b"} <= s for s in cluster.co_resident)
        snap = core.status()["scheduler"]
        assert snap["counters"]["evictions"] >= 3
        assert all(g["used_mib"] + g["reserved_mib"] <= 24576 - 512 for g in snap["gpus"])

    asyncio.run(scenario())


def test_a_model_no_gpu_can_hold_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, _ = make(tmp_path)
        with pytest.raises(InsufficientVram) as err:
            core.admit("huge")
        assert err.value.detail["largest_gpu_mb"] == 24576 - 512
        core.admit("big_a")  # fits: no error
        core.admit("cpu")
        job = add(core, "huge")  # reached the job manager anyway: failed, not queued forever
        row = job_db.require_job(core.engine, job)
        assert row.status == "failed" and row.error_code == "INSUFFICIENT_VRAM"

    asyncio.run(scenario())


def test_a_lost_replica_frees_its_ledger_entry_and_its_job_is_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, cluster = make(tmp_path)
        core.ensure_started()
        cluster.die.add("family")
        job = add(core, "fam_text")
        cluster.gate.set()
        await until(lambda: core.counters["replicas_lost"] == 1)
        # Serve starts a new replica, which reports without weights; the retry reloads.
        cluster.loaded.discard("family")
        core.replica_report("family", "family-r2", (NODE, 1), loaded=False)
        await until(lambda: status(core, job) == "completed")
        assert job_db.require_job(core.engine, job).attempt == 2
        assert [d for op, d in cluster.ops if op == "load"].count("family") == 2

    asyncio.run(scenario())


def test_restarted_job_manager_adopts_resident_replicas(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, cluster = make(tmp_path)
        core.ensure_started()
        core.replica_report("big_a", "big_a-r1", (NODE, 0), loaded=True)
        ledger = core.scheduler.ledger.gpu_or_none(core.scheduler.ledger.replicas("big_a")[0].gpu)
        assert ledger is not None and ledger.resident.mib == 16000
        # A replica that restarted without weights while booked as ready is lost.
        core.replica_report("big_a", "big_a-r1", (NODE, 0), loaded=False)
        assert core.scheduler.ledger.replicas("big_a") == []
        assert core.counters["replicas_lost"] == 1

    asyncio.run(scenario())


def test_unloadable_model_fails_its_queued_jobs_with_the_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, cluster = make(tmp_path)
        core.ensure_started()
        cluster.fail_load["big_b"] = ModelNotAvailable("weights folder /w/b is empty")
        job = add(core, "big_b")
        await until(lambda: status(core, job) == "failed")
        row = job_db.require_job(core.engine, job)
        assert row.error_code == "MODEL_NOT_AVAILABLE" and "empty" in (row.error_message or "")
        assert core.status()["models"]["big_b"]["unavailable"] == "weights folder /w/b is empty"
        assert core.scheduler.ledger.replicas("big_b") == []

    asyncio.run(scenario())


def test_admin_load_and_unload(tmp_path: Path) -> None:
    async def scenario() -> None:
        core, cluster = make(tmp_path)
        core.ensure_started()
        assert core.load("big_a")["gpu"] == f"{NODE}:0" or core.load  # placed where Ray put it
        await until(lambda: "big_a" in cluster.loaded)
        await until(lambda: core.status()["models"]["big_a"]["loaded"])
        with pytest.raises(Conflict):
            core.load("big_b")  # no room beside big_a, and a manual load evicts nothing
        with pytest.raises(BadRequest):
            core.load("cpu")
        core.unload("big_a")
        await until(lambda: "big_a" not in cluster.loaded)
        with pytest.raises(Conflict):
            core.unload("big_a")

    asyncio.run(scenario())
