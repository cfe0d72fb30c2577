"""The job manager's logic, without Ray: a real SQLite database, an in-process dispatcher."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from meshforge.job_manager import JobManagerCore
from meshforge.settings import Settings
from persistence import jobs as job_db
from persistence.db import migrate
from persistence.models import Job


class Replicas:
    """Stands in for Serve handles: each call is a task that commits through `finish`."""

    def __init__(self) -> None:
        self.core: JobManagerCore | None = None
        self.calls: list[tuple[str, int]] = []
        self.behaviour: dict[str, str] = {}  # job_id -> ok | die | die_once | hang
        self.release = asyncio.Event()

    def __call__(self, model_id: str, payload: dict[str, Any]) -> Any:
        self.calls.append((payload["job_id"], payload["attempt"]))
        return asyncio.ensure_future(self._run(payload))

    async def _run(self, payload: dict[str, Any]) -> dict[str, Any]:
        mode = self.behaviour.get(payload["job_id"], "ok")
        if mode == "die_once":
            self.behaviour[payload["job_id"]] = "ok"
            mode = "die"
        await self.release.wait()
        if mode == "die":
            raise RuntimeError("replica died")
        if mode == "hang":
            await asyncio.sleep(3600)
        assert self.core is not None
        accepted = self.core.finish(
            payload["job_id"], payload["attempt"], {"status": "completed", "result": {"files": []}}
        )
        return {"accepted": accepted}


def make_core(tmp_path: Path, replicas: Replicas, **over: Any) -> JobManagerCore:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    settings = Settings(database_url=url, job_orphan_timeout_s=over.pop("orphan", 30.0), **over)
    core = JobManagerCore(settings, replicas, {"m_fast": 1, "m_slow": 1})
    replicas.core = core
    return core


def add_job(core: JobManagerCore, model: str = "m_fast", priority: int = 0) -> str:
    job = job_db.create_job(
        core.engine, job=Job(feature="f", model_id=model, output_format="glb", priority=priority)
    )
    return job.id


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def status(core: JobManagerCore, job_id: str) -> str:
    return job_db.require_job(core.engine, job_id).status


def test_dispatch_per_model_capacity_and_no_head_of_line_blocking(tmp_path: Path) -> None:
    async def scenario() -> None:
        reps = Replicas()
        core = make_core(tmp_path, reps)
        slow = [add_job(core, "m_slow") for _ in range(3)]
        fast = add_job(core, "m_fast")
        core.ensure_started()
        for j in [*slow, fast]:
            core.submit(j)
        await settle()
        # One slot per model: the first slow job and the fast job run, although two slow
        # jobs queued before the fast one.
        assert {status(core, j) for j in slow[1:]} == {"queued"}
        assert status(core, slow[0]) == "processing" and status(core, fast) == "processing"
        assert core.queue_info(slow[2])["queue_position"] == 1
        reps.release.set()
        for _ in range(50):
            await settle()
            if all(status(core, j) == "completed" for j in [*slow, fast]):
                break
        assert all(status(core, j) == "completed" for j in [*slow, fast])
        assert sorted(a for _, a in reps.calls) == [1, 1, 1, 1]

    asyncio.run(scenario())


def test_replica_death_is_retried_once_then_fails(tmp_path: Path) -> None:
    async def scenario() -> None:
        reps = Replicas()
        core = make_core(tmp_path, reps)
        once, twice = add_job(core), add_job(core, "m_slow")
        reps.behaviour[twice] = "die"
        core.ensure_started()
        core.submit(once)
        core.submit(twice)
        reps.behaviour[once] = "die_once"
        reps.release.set()
        for _ in range(50):
            await settle()
            if status(core, once) == "completed" and status(core, twice) == "failed":
                break
        assert status(core, once) == "completed"
        job = job_db.require_job(core.engine, twice)
        assert job.status == "failed" and job.error_code == "JOB_FAILED"
        assert "replica" in (job.error_message or "")
        assert [a for j, a in reps.calls if j == once] == [1, 2]

    asyncio.run(scenario())


def test_restart_requeues_and_recovers_orphans(tmp_path: Path) -> None:
    async def scenario() -> None:
        reps = Replicas()
        core = make_core(tmp_path, reps, orphan=0.3)
        running, waiting = add_job(core), add_job(core)
        reps.behaviour[running] = "hang"
        core.ensure_started()
        core.submit(running)
        core.submit(waiting)
        await settle()
        assert status(core, running) == "processing" and status(core, waiting) == "queued"
        # A new core on the same database (the actor restarted): nothing is lost.
        reps2 = Replicas()
        core2 = make_core(tmp_path, reps2, orphan=0.3)
        core._loop_task.cancel()  # type: ignore[union-attr]
        core2.ensure_started()
        assert core2.heartbeat(running, 1, "still here", 0.5) is True  # replica reports in
        await asyncio.sleep(0.1)
        assert status(core2, running) == "processing"
        # No more heartbeats: after the orphan timeout the job is retried.
        reps2.release.set()
        for _ in range(1500):  # generous: a loaded CI machine is slow
            await asyncio.sleep(0.02)
            if status(core2, running) == "completed" and status(core2, waiting) == "completed":
                break
        assert status(core2, running) == "completed" and status(core2, waiting) == "completed"
        assert job_db.require_job(core2.engine, running).attempt == 2
        # The superseded first attempt can no longer commit.
        assert core2.finish(running, 1, {"status": "completed", "result": {}}) is False

    asyncio.run(scenario())


def test_cancel_queued_and_running(tmp_path: Path) -> None:
    async def scenario() -> None:
        reps = Replicas()
        core = make_core(tmp_path, reps)
        running, queued = add_job(core), add_job(core)
        core.ensure_started()
        core.submit(running)
        core.submit(queued)
        await settle()
        assert core.cancel(queued)["status"] == "cancelled"
        assert core.cancel(running)["status"] == "cancelled"
        assert core.heartbeat(running, 1, "x", 0.1) is False  # tells the replica to stop
        reps.release.set()
        await settle()
        assert status(core, running) == "cancelled" and status(core, queued) == "cancelled"

    asyncio.run(scenario())
