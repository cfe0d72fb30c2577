"""The job manager: a named, detached Ray actor that owns every job state transition.

It is a thin shell around `scheduling` (queues and dispatch decisions) and `persistence`
(the job rows). All of its state can be rebuilt from the database, which is what happens
when Ray restarts it: queued jobs are queued again, and processing jobs keep running on
their replicas, which keep sending heartbeats and commit their result here. A processing
job that stops sending heartbeats is retried once, then failed with a reason.

Exactly-once completion: every dispatch increments the job's `attempt`, and `finish` is a
compare-and-set on (status=processing, attempt); a late result of a superseded attempt is
refused and its replica deletes its outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from meshforge.errors import Conflict, NotFound
from meshforge.lifecycle import JobStatus
from meshforge.settings import Settings
from persistence import jobs as job_db
from persistence.db import make_engine
from persistence.models import Job, utcnow
from scheduling.queue import Dispatch, JobQueues

log = logging.getLogger("meshforge.job_manager")


@dataclass
class _Running:
    job_id: str
    model_id: str
    attempt: int
    task: asyncio.Task[None] | None
    last_seen: float
    stage: str = "dispatched"
    fraction: float = 0.0
    response: Any = None


class JobManagerCore:
    """Everything the actor does, written against a `dispatcher` callable so it can run
    without Ray. `dispatcher(model_id, payload)` returns an awaitable that resolves when the
    replica returns, and has a `.cancel()`."""

    def __init__(self, settings: Settings, dispatcher: Any, capacity: dict[str, int]) -> None:
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url())
        self.dispatcher = dispatcher
        self.capacity = dict(capacity)
        self.queues = JobQueues()
        self.running: dict[str, _Running] = {}
        self.counters = {
            "dispatched": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "retried": 0,
            "recovered": 0,
            "stale_results": 0,
        }
        self.started_at = time.time()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # ---- startup and recovery -------------------------------------------------------
    def ensure_started(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._recover()
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def _recover(self) -> None:
        """Rebuild queues from the database; processing jobs get a grace period to report."""
        now = time.monotonic()
        for job in job_db.jobs_in(self.engine, [JobStatus.QUEUED, JobStatus.PROCESSING]):
            if job.status == JobStatus.QUEUED.value:
                self.queues.push(job.id, job.model_id, job.priority)
            elif job.id not in self.running:
                self.running[job.id] = _Running(
                    job.id,
                    job.model_id,
                    job.attempt,
                    None,
                    now,
                    job.progress_stage or "recovering",
                    job.progress_fraction,
                )
        log.info(
            "recovered %d queued, %d processing jobs",
            sum(self.queues.lengths().values()),
            len(self.running),
        )

    # ---- the loop -----------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                self._dispatch_ready()
                self._reap_orphans()
            except Exception:  # the top of the actor loop: log and keep serving
                log.exception("job manager loop error")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass

    def _free_slots(self) -> dict[str, int]:
        busy: dict[str, int] = {}
        for run in self.running.values():
            busy[run.model_id] = busy.get(run.model_id, 0) + 1
        return {m: cap - busy.get(m, 0) for m, cap in self.capacity.items()}

    def _dispatch_ready(self) -> None:
        for decision in self.queues.plan(self._free_slots()):
            self._start(decision)

    def _start(self, decision: Dispatch) -> None:
        job = job_db.get_job(self.engine, decision.job_id)
        if job is None or job.status != JobStatus.QUEUED.value:
            return
        attempt = job.attempt + 1
        try:
            job = job_db.transition_job(
                self.engine,
                job_id=job.id,
                to=JobStatus.PROCESSING,
                expect_attempt=job.attempt,
                **{
                    "attempt": attempt,
                    "heartbeat_at": utcnow(),
                    "progress_stage": "dispatched",
                    "progress_fraction": 0.0,
                },
            )
        except Conflict:
            return
        run = _Running(job.id, job.model_id, attempt, None, time.monotonic())
        self.running[job.id] = run
        self.counters["dispatched"] += 1
        run.task = asyncio.get_running_loop().create_task(self._run(job, run))

    async def _run(self, job: Job, run: _Running) -> None:
        """Call the replica; the replica commits through `finish`, so a plain return or an
        error that leaves the job processing means the replica was lost."""
        payload = {
            "job_id": job.id,
            "attempt": run.attempt,
            "model_id": job.model_id,
            "params": job.params,
            "inputs": job.inputs,
            "output_format": job.output_format,
        }
        try:
            run.response = self.dispatcher(job.model_id, payload)
            await run.response
            reason = "model replica returned without a result"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # replica died or the call failed
            log.warning("job %s attempt %d: replica call failed: %r", job.id, run.attempt, exc)
            reason = f"model replica failed ({type(exc).__name__})"
        self._replica_lost(job.id, run.attempt, reason)
        if self.running.get(job.id) is run:
            self.running.pop(job.id, None)
        self._wake.set()

    def _replica_lost(self, job_id: str, attempt: int, reason: str) -> None:
        job = job_db.get_job(self.engine, job_id)
        if job is None or job.status != JobStatus.PROCESSING.value or job.attempt != attempt:
            return
        self.running.pop(job_id, None)
        try:
            if job.retries < self.settings.job_max_retries:
                job_db.transition_job(
                    self.engine,
                    job_id=job_id,
                    to=JobStatus.QUEUED,
                    expect_attempt=attempt,
                    retries=job.retries + 1,
                    progress_stage=f"retrying: {reason}",
                    progress_fraction=0.0,
                )
                self.queues.push(job_id, job.model_id, job.priority, front=True)
                self.counters["retried"] += 1
            else:
                job_db.transition_job(
                    self.engine,
                    job_id=job_id,
                    to=JobStatus.FAILED,
                    expect_attempt=attempt,
                    error_code="JOB_FAILED",
                    error_message=f"{reason} (after {job.retries} retries)",
                )
                self.counters["failed"] += 1
        except Conflict:
            pass

    def _reap_orphans(self) -> None:
        """Processing jobs whose replica stopped sending heartbeats count as replica failures."""
        limit = self.settings.job_orphan_timeout_s
        now = time.monotonic()
        for run in list(self.running.values()):
            if now - run.last_seen > limit:
                if run.task is not None:
                    run.task.cancel()
                self.counters["recovered"] += 1
                self._replica_lost(run.job_id, run.attempt, "model replica stopped responding")
                if self.running.get(run.job_id) is run:
                    self.running.pop(run.job_id, None)

    # ---- calls from the gateway -----------------------------------------------------
    def submit(self, job_id: str) -> dict[str, Any]:
        self.ensure_started()
        job = job_db.require_job(self.engine, job_id)
        if job.status == JobStatus.QUEUED.value:
            self.queues.push(job.id, job.model_id, job.priority)
            self._wake.set()
        return {
            "job_id": job_id,
            "status": job.status,
            "queue_position": self.queues.position(job_id),
        }

    def cancel(self, job_id: str) -> dict[str, Any]:
        self.ensure_started()
        job = job_db.require_job(self.engine, job_id)
        attempt = job.attempt
        job = job_db.transition_job(
            self.engine,
            job_id=job_id,
            to=JobStatus.CANCELLED,
            expect_attempt=attempt,
            cancel_requested=True,
            error_code=None,
            error_message="Cancelled by request",
        )
        self.queues.remove(job_id)
        run = self.running.pop(job_id, None)
        if run is not None and run.response is not None:
            try:
                run.response.cancel()
            except Exception:
                log.debug("cancel of job %s response failed", job_id, exc_info=True)
        self.counters["cancelled"] += 1
        self._wake.set()
        return {"job_id": job_id, "status": job.status}

    # ---- calls from replicas -----------------------------------------------------------
    def heartbeat(self, job_id: str, attempt: int, stage: str, fraction: float) -> bool:
        """Record progress; False tells the replica to stop (cancelled or superseded)."""
        self.ensure_started()
        run = self.running.get(job_id)
        if run is None or run.attempt != attempt:
            return False
        run.last_seen = time.monotonic()
        run.stage, run.fraction = stage, fraction
        return job_db.update_progress(
            self.engine, job_id=job_id, attempt=attempt, stage=stage, fraction=fraction
        )

    def finish(self, job_id: str, attempt: int, outcome: dict[str, Any]) -> bool:
        """Commit a replica's outcome; True if it was accepted (exactly one attempt wins)."""
        self.ensure_started()
        try:
            job = job_db.require_job(self.engine, job_id)
        except NotFound:
            return False
        if job.status != JobStatus.PROCESSING.value or job.attempt != attempt:
            self.counters["stale_results"] += 1
            return False
        try:
            if outcome.get("status") == JobStatus.COMPLETED.value:
                job_db.transition_job(
                    self.engine,
                    job_id=job_id,
                    to=JobStatus.COMPLETED,
                    expect_attempt=attempt,
                    result=outcome.get("result"),
                    progress_stage="completed",
                    progress_fraction=1.0,
                )
                self.counters["completed"] += 1
            else:
                job_db.transition_job(
                    self.engine,
                    job_id=job_id,
                    to=JobStatus.FAILED,
                    expect_attempt=attempt,
                    error_code=outcome.get("error_code", "JOB_FAILED"),
                    error_message=outcome.get("error_message"),
                )
                self.counters["failed"] += 1
        except Conflict:
            self.counters["stale_results"] += 1
            return False
        run = self.running.get(job_id)
        if run is not None and run.attempt == attempt:
            self.running.pop(job_id, None)
        self._wake.set()
        return True

    # ---- introspection -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        self.ensure_started()
        lengths = self.queues.lengths()
        models = {
            m: {
                "capacity": cap,
                "queued": lengths.get(m, 0),
                "running": sum(1 for r in self.running.values() if r.model_id == m),
            }
            for m, cap in self.capacity.items()
        }
        return {
            "running": True,
            "uptime_s": round(time.time() - self.started_at, 1),
            "queued_jobs": sum(lengths.values()),
            "processing_jobs": len(self.running),
            "models": models,
            "counters": dict(self.counters),
            "jobs": {
                r.job_id: {
                    "model_id": r.model_id,
                    "attempt": r.attempt,
                    "stage": r.stage,
                    "fraction": r.fraction,
                }
                for r in self.running.values()
            },
        }

    def queue_position(self, job_id: str) -> int | None:
        return self.queues.position(job_id)
