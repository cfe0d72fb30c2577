"""The job manager: a named, detached Ray actor that owns every job state transition.

It is a thin shell around `scheduling` (queues, VRAM ledger, dispatch/load/unload
decisions) and `persistence` (the job rows). All of its state can be rebuilt: job rows from
the database, which is what happens when Ray restarts it (queued jobs are queued again, and
processing jobs keep running on their replicas, which keep sending heartbeats and commit
their result here), and the VRAM ledger from the replicas, which report what they hold. A
processing job that stops sending heartbeats is retried once, then failed with a reason.

Exactly-once completion: every dispatch increments the job's `attempt`, and `finish` is a
compare-and-set on (status=processing, attempt); a late result of a superseded attempt is
refused and its replica deletes its outputs.

GPU deployments, their replicas and the load/unload hooks: `meshforge.gpu_fleet`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshforge.errors import (
    Conflict,
    NotFound,
)
from meshforge.gpu_fleet import DeploymentInfo, GpuFleet, GpuOps, too_large
from meshforge.lifecycle import JobStatus
from meshforge.settings import Settings
from persistence import jobs as job_db
from persistence.db import make_engine
from persistence.models import Job, utcnow
from scheduling import (
    Dispatch,
    GpuInfo,
    GpuInventory,
    ModelTooLarge,
    Scheduler,
    SchedulerConfig,
)

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
    deployment: str = ""
    reached: bool = True
    """A replica has the job (it sent a heartbeat); until then the dispatch may be waiting
    for Serve to start a replica, which gets `job_start_timeout_s`, not the orphan limit."""


class JobManagerCore:
    """Everything the actor does, written against a `dispatcher` callable so it can run
    without Ray. `dispatcher(deployment, payload)` returns an awaitable that resolves when
    the replica returns, and has a `.cancel()`; `gpu_ops` applies load/unload decisions."""

    def __init__(
        self,
        settings: Settings,
        dispatcher: Callable[[str, dict[str, Any]], Any],
        deployments: Mapping[str, int | Mapping[str, Any]],
        gpu_ops: GpuOps | None = None,
        scheduler_config: SchedulerConfig | None = None,
    ) -> None:
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url())
        self.dispatcher = dispatcher
        self.fleet = GpuFleet(self, gpu_ops)
        # Ray places the one replica of each GPU deployment; the scheduler never asks for
        # another, so scale-out is off here (the simulator exercises it).
        self.scheduler = Scheduler(
            GpuInventory(), (), scheduler_config or SchedulerConfig(scale_out=False)
        )
        self.deployments: dict[str, DeploymentInfo] = {}
        self.model_to_deployment: dict[str, str] = {}
        self.running: dict[str, _Running] = {}
        self.counters = {
            "dispatched": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "retried": 0,
            "recovered": 0,
            "stale_results": 0,
            "replicas_lost": 0,
        }
        self.started_at = time.time()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._ops: set[asyncio.Task[None]] = set()
        self._orphans_to_resume: dict[str, str] = {}
        self.configure(deployments)

    # ---- configuration -----------------------------------------------------------------
    def configure(self, deployments: Mapping[str, int | Mapping[str, Any]]) -> None:
        """(Re)declare the deployments; the gateway sends them on every start."""
        for name, value in deployments.items():
            info = DeploymentInfo.parse(name, value)
            self.deployments[name] = info
            for model_id in info.models:
                self.model_to_deployment[model_id] = name
            self.scheduler.add_model(info.profile())
            if info.needs_gpu:
                report = self.fleet.replicas.get(name)
                self.scheduler.set_hosts(name, [report.gpu] if report else [])
        self._wake.set()

    def deployment_of(self, model_id: str) -> DeploymentInfo | None:
        name = self.model_to_deployment.get(model_id)
        return self.deployments.get(name) if name else None

    # ---- startup and recovery -------------------------------------------------------
    def ensure_started(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._recover()
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def _recover(self) -> None:
        """Rebuild queues from the database; processing jobs get a grace period to report,
        and are booked on their GPU once its replica reports (`replica_report`)."""
        now = time.monotonic()
        for job in job_db.jobs_in(self.engine, [JobStatus.QUEUED, JobStatus.PROCESSING]):
            if job.status == JobStatus.QUEUED.value:
                self._enqueue(job)
            elif job.id not in self.running:
                dep = self.deployment_of(job.model_id)
                self.running[job.id] = _Running(
                    job.id,
                    job.model_id,
                    job.attempt,
                    None,
                    now,
                    job.progress_stage or "recovering",
                    job.progress_fraction,
                    deployment=dep.name if dep else job.model_id,
                )
                if dep is not None and not dep.needs_gpu:
                    self.scheduler.resume(job.id, dep.name, None, now)
                elif dep is not None:
                    self._orphans_to_resume[job.id] = dep.name
        log.info(
            "recovered %d queued, %d processing jobs", len(self.scheduler.queues), len(self.running)
        )

    def _enqueue(self, job: Job, front: bool = False) -> None:
        """Queue a job row with the scheduler; a job no GPU could ever run fails now."""
        dep = self.deployment_of(job.model_id)
        if dep is None:
            self._fail_queued(job, "MODEL_NOT_AVAILABLE", f"Model {job.model_id} is not deployed")
            return
        try:
            self.scheduler.submit(
                job.id,
                dep.name,
                now=time.monotonic(),
                priority=job.priority,
                owner=job.owner_id or "",
                front=front,
            )
        except ModelTooLarge as exc:
            error = too_large(job.model_id, exc.need.mib, exc.largest_room.mib)
            self._fail_queued(job, "INSUFFICIENT_VRAM", error.message)

    def _fail_queued(self, job: Job, code: str, message: str) -> None:
        try:
            job_db.transition_job(
                self.engine,
                job_id=job.id,
                to=JobStatus.FAILED,
                expect_attempt=job.attempt,
                error_code=code,
                error_message=message,
            )
            self.counters["failed"] += 1
        except Conflict:
            pass

    # ---- the loop -----------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                self._dispatch_ready()
                self._reap_orphans()
            except Exception:  # the top of the actor loop: log and keep serving
                log.exception("job manager loop error")
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the event fires, and the loop would never stop.
            try:
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _dispatch_ready(self) -> None:
        plan = self.scheduler.plan(time.monotonic())
        for unload in plan.unloads:
            self._spawn(self.fleet.apply_unload(unload))
        for load in plan.loads:
            self._spawn(self.fleet.apply_load(load))
        for decision in plan.dispatches:
            self._start(decision)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)

    def _start(self, decision: Dispatch) -> None:
        job = job_db.get_job(self.engine, decision.job_id)
        if job is None or job.status != JobStatus.QUEUED.value:
            self.scheduler.job_finished(decision.job_id, time.monotonic())
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
            self.scheduler.job_finished(decision.job_id, time.monotonic())
            return
        run = _Running(
            job.id,
            job.model_id,
            attempt,
            None,
            time.monotonic(),
            deployment=decision.model_id,
            reached=False,
        )
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
        lost = False
        try:
            run.response = self.dispatcher(run.deployment, payload)
            answer = await run.response
            if isinstance(answer, dict) and answer.get("not_loaded"):
                reason = "model replica had restarted without its weights"
                lost = True
            else:
                reason = "model replica returned without a result"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # replica died or the call failed
            log.warning("job %s attempt %d: replica call failed: %r", job.id, run.attempt, exc)
            reason = f"model replica failed ({type(exc).__name__})"
            lost = True
        if lost:
            self.fleet.replica_lost(run.deployment)
        self._replica_lost(job.id, run.attempt, reason)
        if self.running.get(job.id) is run:
            self.running.pop(job.id, None)
        self._wake.set()

    def _replica_lost(self, job_id: str, attempt: int, reason: str) -> None:
        self.scheduler.job_finished(job_id, time.monotonic())
        job = job_db.get_job(self.engine, job_id)
        if job is None or job.status != JobStatus.PROCESSING.value or job.attempt != attempt:
            return
        self.running.pop(job_id, None)
        try:
            if job.retries < self.settings.job_max_retries:
                job = job_db.transition_job(
                    self.engine,
                    job_id=job_id,
                    to=JobStatus.QUEUED,
                    expect_attempt=attempt,
                    retries=job.retries + 1,
                    progress_stage=f"retrying: {reason}",
                    progress_fraction=0.0,
                )
                self._enqueue(job, front=True)
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
        """Processing jobs whose replica stopped sending heartbeats (or never started them)
        count as replica failures."""
        orphan = self.settings.job_orphan_timeout_s
        start = max(orphan, self.settings.job_start_timeout_s)
        now = time.monotonic()
        for run in list(self.running.values()):
            if now - run.last_seen > (orphan if run.reached else start):
                if run.task is not None:
                    run.task.cancel()
                self.counters["recovered"] += 1
                self._orphans_to_resume.pop(run.job_id, None)
                self._replica_lost(run.job_id, run.attempt, "model replica stopped responding")
                if self.running.get(run.job_id) is run:
                    self.running.pop(run.job_id, None)

    # ---- calls from the gateway -----------------------------------------------------
    def admit(self, model_id: str) -> None:
        """Raise INSUFFICIENT_VRAM if no GPU in the cluster could ever hold the model."""
        self.fleet.admit(model_id)

    def submit(self, job_id: str) -> dict[str, Any]:
        self.ensure_started()
        job = job_db.require_job(self.engine, job_id)
        if job.status == JobStatus.QUEUED.value:
            self._enqueue(job)
            job = job_db.require_job(self.engine, job_id)
            self._wake.set()
        return {"job_id": job_id, "status": job.status, **self.queue_info(job_id)}

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
        self.scheduler.cancel(job_id)
        self.scheduler.job_finished(job_id, time.monotonic())
        run = self.running.pop(job_id, None)
        if run is not None and run.response is not None:
            try:
                run.response.cancel()
            except Exception:
                log.debug("cancel of job %s response failed", job_id, exc_info=True)
        self.counters["cancelled"] += 1
        self._wake.set()
        return {"job_id": job_id, "status": job.status}

    def load(self, model_id: str) -> dict[str, Any]:
        """Admin: load a model's weights now (where its replica sits), if there is room."""
        self.ensure_started()
        return self.fleet.load(model_id)

    def unload(self, model_id: str) -> dict[str, Any]:
        """Admin: unload a model's weights now; refused while it has jobs in flight."""
        self.ensure_started()
        return self.fleet.unload(model_id)

    # ---- calls from replicas and the inventory --------------------------------------------
    def replica_report(
        self, deployment: str, replica_id: str, gpu: tuple[str, int], loaded: bool, **more: Any
    ) -> dict[str, Any]:
        """A GPU deployment's replica says where it sits and what it holds (`GpuFleet.report`)."""
        self.ensure_started()
        return self.fleet.report(deployment, replica_id, gpu, loaded, **more)

    def replica_pids(self, node_id: str) -> set[int]:
        return self.fleet.pids(node_id)

    def remove_node(self, node_id: str) -> None:
        self.fleet.remove_node(node_id)

    def update_gpu(self, info: GpuInfo) -> None:
        """A fresh NVML (or simulated) reading of one GPU; a GPU not seen before joins."""
        self.scheduler.update_gpu(info)
        self._wake.set()

    def heartbeat(self, job_id: str, attempt: int, stage: str, fraction: float) -> bool:
        """Record progress; False tells the replica to stop (cancelled or superseded)."""
        self.ensure_started()
        run = self.running.get(job_id)
        if run is None or run.attempt != attempt:
            return False
        run.last_seen, run.reached = time.monotonic(), True
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
        self.scheduler.job_finished(job_id, time.monotonic())
        self._orphans_to_resume.pop(job_id, None)
        run = self.running.get(job_id)
        if run is not None and run.attempt == attempt:
            self.running.pop(job_id, None)
        self._wake.set()
        return True

    # ---- introspection -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        self.ensure_started()
        now = time.monotonic()
        snap = self.scheduler.snapshot(now)
        models = {}
        for name, dep in self.deployments.items():
            live = snap["models"].get(name, {})
            report = self.fleet.replicas.get(name)
            row = {
                "deployment": name,
                "capacity": dep.max_concurrency,
                "queued": live.get("queued", 0),
                "running": sum(1 for r in self.running.values() if r.deployment == name),
                "vram_mb": dep.vram_mb,
                "waiting_reason": live.get("waiting_reason"),
                "replicas": live.get("replicas", []),
                "placed_on": str(report.gpu) if report else None,
                "loaded": bool(report and report.loaded) if dep.needs_gpu else True,
                "unavailable": report.unavailable if report else None,
            }
            for model_id in dep.models:
                models[model_id] = row
        return {
            "running": True,
            "uptime_s": round(time.time() - self.started_at, 1),
            "queued_jobs": len(self.scheduler.queues),
            "processing_jobs": len(self.running),
            "models": models,
            "counters": {**self.counters, **snap["counters"]},
            "scheduler": snap,
            "jobs": {
                r.job_id: {
                    "model_id": r.model_id,
                    "attempt": r.attempt,
                    "stage": r.stage,
                    "fraction": r.fraction,
                    "gpu": str(self.scheduler.running_on(r.job_id) or "") or None,
                }
                for r in self.running.values()
            },
        }

    def queue_info(self, job_id: str) -> dict[str, Any]:
        """A queued job's place in its model's queue and why it waits."""
        position = self.scheduler.queues.position(job_id)
        reason = self.scheduler.wait_reason(job_id)
        return {"queue_position": position, "waiting_reason": reason.value if reason else None}
