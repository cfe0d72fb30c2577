"""The GPU side of the job manager: where each GPU deployment's replica sits, what it
holds, and the scheduler's load and unload decisions applied through the replica's hooks.

GPU models are placed by Ray (each deployment's one replica asks for a fractional
`num_gpus`) and hold no weights until the scheduler decides to load them: the job manager
applies `Load`/`Unload` decisions through the replicas' `load_model`/`unload_model` hooks.
Hooks rather than replica counts because a Serve replica start costs a process, a CUDA
context and Ray's own placement (tens of seconds, on a GPU Ray picks), while a hook swaps
weights in the process that already sits on the GPU the ledger knows; and because the
replica keeps reporting where it sits and what it holds, the ledger can be rebuilt after a
restart and is freed when a replica dies.

A `GpuFleet` belongs to one `JobManagerCore` and shares its scheduler, job rows and loop.
Every replica reports (deployment, replica id, GPU, loaded, sequence number) on start and
at each health check: a new replica id means Serve replaced a dead one, whose ledger entry
is freed and whose jobs are retried; weights the books do not know of (the job manager
restarted) are adopted; a report older than a hook's answer is ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from meshforge.errors import (
    BadRequest,
    Conflict,
    InsufficientVram,
    MeshForgeError,
    NotFound,
    ServiceUnavailable,
)
from meshforge.lifecycle import JobStatus
from persistence import jobs as job_db
from scheduling import (
    GpuInfo,
    GpuRef,
    LedgerError,
    Load,
    ModelProfile,
    NoHost,
    NotAGpuModel,
    SchedulingError,
    Unload,
    Vram,
)
from scheduling.ledger import ReplicaState

if TYPE_CHECKING:
    from meshforge.job_manager import JobManagerCore

log = logging.getLogger("meshforge.job_manager")


@dataclass(frozen=True)
class DeploymentInfo:
    """What the job manager knows about one Serve deployment (built by the gateway from
    the settings and the model specs): the models it serves, the VRAM one replica needs
    (0: a CPU deployment) and how many jobs it takes at once (a CPU deployment: all its
    replicas together; a GPU deployment: its replica)."""

    name: str
    models: tuple[str, ...]
    vram_mb: int = 0
    load_time_s: float = 1.0
    max_concurrency: int = 1

    @property
    def needs_gpu(self) -> bool:
        return self.vram_mb > 0

    def profile(self) -> ModelProfile:
        return ModelProfile(
            model_id=self.name,
            vram=Vram(self.vram_mb),
            load_time_s=self.load_time_s,
            max_concurrency=max(1, self.max_concurrency),
        )

    @classmethod
    def parse(cls, name: str, value: int | Mapping[str, Any]) -> DeploymentInfo:
        """From the JSON the gateway sends; a bare int is a CPU deployment of one model
        with that many slots."""
        if isinstance(value, int):
            return cls(name, (name,), 0, 1.0, value)
        return cls(
            name=name,
            models=tuple(value.get("models") or (name,)),
            vram_mb=int(value.get("vram_mb", 0)),
            load_time_s=float(value.get("load_time_s", 1.0)),
            max_concurrency=int(value.get("max_concurrency", 1)),
        )


class GpuOps(Protocol):
    """Runs load/unload decisions in the replicas (Serve handles in the actor, fakes in
    tests). Both raise if the replica could not do it."""

    def load(self, deployment: str) -> Awaitable[Any]: ...

    def unload(self, deployment: str) -> Awaitable[Any]: ...


@dataclass
class ReplicaReport:
    """Where a GPU deployment's replica sits and what it holds, as it last said."""

    replica_id: str
    gpu: GpuRef
    pid: int | None = None
    loaded: bool = False
    unavailable: str | None = None
    seq: int = 0
    """The replica's count of finished loads and unloads: a report older than what the
    job manager already heard (it crossed a hook's answer) is not taken as news."""
    lost: bool = False


class GpuFleet:
    """The GPU deployments' replicas as the job manager knows them, and the hooks it runs."""

    def __init__(self, core: JobManagerCore, ops: GpuOps | None) -> None:
        self.core = core
        self.ops = ops
        self.replicas: dict[str, ReplicaReport] = {}
        self._generation: dict[str, int] = {}

    def admit(self, model_id: str) -> None:
        """Raise INSUFFICIENT_VRAM if no GPU in the cluster could ever hold the model."""
        dep = self.core.deployment_of(model_id)
        scheduler = self.core.scheduler
        if dep is None or not dep.needs_gpu or scheduler.fits_anywhere(dep.name):
            return
        raise too_large(model_id, dep.vram_mb, scheduler.ledger.largest_room().mib)

    async def apply_load(self, load: Load) -> None:
        generation = self._generation.get(load.model_id, 0)
        ok, answer = False, None
        try:
            if self.ops is None:
                raise RuntimeError("no GPU operations configured")
            answer = await self.ops.load(load.model_id)
            ok = True
        except Exception as exc:  # the replica could not load: free the reservation
            log.warning("load of %s on %s failed: %r", load.model_id, load.gpu, exc)
            self._load_failed(load.model_id, exc)
        self.core._wake.set()
        if self._generation.get(load.model_id, 0) != generation:
            return  # the replica was lost meanwhile; its entry is gone, a report follows
        ledger = self.core.scheduler.ledger.gpu_or_none(load.gpu)
        entry = ledger.get(load.model_id) if ledger is not None else None
        if entry is not None and entry.state is ReplicaState.LOADING:
            self.core.scheduler.load_finished(load.model_id, load.gpu, time.monotonic(), ok=ok)
        report = self.replicas.get(load.model_id)
        if report is not None and ok:
            report.loaded = True
            report.seq = max(report.seq, _seq_of(answer))

    def _load_failed(self, deployment: str, exc: Exception) -> None:
        """A model that cannot load (missing package or weights) must not keep its queued
        jobs waiting forever: they fail with the replica's reason."""
        reason = _reason_of(exc)
        unavailable = isinstance(exc, MeshForgeError) and exc.code == "MODEL_NOT_AVAILABLE"
        report = self.replicas.get(deployment)
        if report is not None and unavailable:
            report.unavailable = reason
        if not unavailable:
            return
        while (queued := self.core.scheduler.queues.pop(deployment)) is not None:
            job = job_db.get_job(self.core.engine, queued.job_id)
            if job is not None and job.status == JobStatus.QUEUED.value:
                self.core._fail_queued(job, "MODEL_NOT_AVAILABLE", reason)

    async def apply_unload(self, unload: Unload) -> None:
        answer = None
        try:
            if self.ops is None:
                raise RuntimeError("no GPU operations configured")
            answer = await self.ops.unload(unload.model_id)
        except Exception as exc:  # unreachable replica: its memory is gone with it
            log.warning("unload of %s on %s failed: %r", unload.model_id, unload.gpu, exc)
        ledger = self.core.scheduler.ledger.gpu_or_none(unload.gpu)
        entry = ledger.get(unload.model_id) if ledger is not None else None
        if entry is not None and entry.state is ReplicaState.UNLOADING:
            self.core.scheduler.unload_finished(unload.model_id, unload.gpu)
        report = self.replicas.get(unload.model_id)
        if report is not None:
            report.loaded = False
            report.seq = max(report.seq, _seq_of(answer))
        self.core._wake.set()

    def replica_lost(self, deployment: str) -> None:
        """The replica of a GPU deployment died (or restarted): its weights are gone, so
        its ledger entry is freed; its jobs are retried or failed by the caller."""
        report = self.replicas.get(deployment)
        if report is None or report.lost:
            return  # unknown, or already handled (its jobs failing one by one report it too)
        report.loaded, report.lost = False, True
        self._generation[deployment] = self._generation.get(deployment, 0) + 1
        if self.core.scheduler.ledger.gpu_or_none(report.gpu) is not None:
            lost = self.core.scheduler.replica_lost(deployment, report.gpu)
            self.core.counters["replicas_lost"] += 1
            for job_id in lost:
                run = self.core.running.get(job_id)
                if run is not None:
                    self.core._replica_lost(job_id, run.attempt, "model replica was lost")

    def load(self, model_id: str) -> dict[str, Any]:
        """Admin: load a model's weights now (where its replica sits), if there is room."""
        dep = self._gpu_deployment(model_id)
        try:
            decision = self.core.scheduler.load(dep.name, time.monotonic())
        except NotAGpuModel as exc:
            raise BadRequest(str(exc)) from exc
        except NoHost as exc:
            raise ServiceUnavailable(f"{exc}; try again once it has started") from exc
        except LedgerError as exc:
            raise Conflict(f"Cannot load {model_id}: {exc}", {"model_id": model_id}) from exc
        self.core._spawn(self.apply_load(decision))
        return {
            "model_id": model_id,
            "deployment": dep.name,
            "action": "load",
            "gpu": str(decision.gpu),
        }

    def unload(self, model_id: str) -> dict[str, Any]:
        """Admin: unload a model's weights now; refused while it has jobs in flight."""
        dep = self._gpu_deployment(model_id)
        replicas = self.core.scheduler.ledger.replicas(dep.name)
        if not replicas:
            raise Conflict(f"{model_id} is not loaded", {"model_id": model_id})
        try:
            decision = self.core.scheduler.unload(dep.name, replicas[0].gpu, time.monotonic())
        except LedgerError as exc:
            raise Conflict(f"Cannot unload {model_id}: {exc}", {"model_id": model_id}) from exc
        self.core._spawn(self.apply_unload(decision))
        return {
            "model_id": model_id,
            "deployment": dep.name,
            "action": "unload",
            "gpu": str(decision.gpu),
        }

    def _gpu_deployment(self, model_id: str) -> DeploymentInfo:
        dep = self.core.deployment_of(model_id) or self.core.deployments.get(model_id)
        if dep is None:
            raise NotFound(f"Model {model_id} is not deployed", {"model_id": model_id})
        if not dep.needs_gpu:
            raise BadRequest(f"{model_id} runs on the CPU; it has nothing to load or unload")
        return dep

    def report(
        self,
        deployment: str,
        replica_id: str,
        gpu: tuple[str, int],
        loaded: bool,
        pid: int | None = None,
        unavailable: str | None = None,
        reading: Mapping[str, int] | None = None,
        seq: int = 0,
    ) -> dict[str, Any]:
        """A GPU deployment's replica says where it sits and whether it holds its weights
        (on start, then periodically). A new replica id means the old replica is gone."""
        ref = GpuRef(gpu[0], int(gpu[1]))
        now = time.monotonic()
        if reading is not None:
            self.core.update_gpu(GpuInfo(ref.node_id, ref.index, **reading))
        old = self.replicas.get(deployment)
        if old is not None and old.replica_id == replica_id:
            old.unavailable, old.pid = unavailable, pid
            if seq < old.seq or old.lost:
                return {"accepted": False}  # crossed a hook's answer, or already given up
            old.seq, old.loaded = seq, loaded
        else:
            if old is not None:
                self.replica_lost(deployment)  # Serve replaced it
            self.replicas[deployment] = ReplicaReport(
                replica_id, ref, pid, loaded, unavailable, seq
            )
        if deployment in self.core.deployments and self.core.deployments[deployment].needs_gpu:
            self.core.scheduler.set_hosts(deployment, [ref])
            self._reconcile(deployment, ref, loaded, now)
        self.core._wake.set()
        return {"accepted": True}

    def _reconcile(self, deployment: str, gpu: GpuRef, loaded: bool, now: float) -> None:
        ledger = self.core.scheduler.ledger.gpu_or_none(gpu)
        if ledger is None:
            return  # its GPU's reading has not arrived yet; the next report adopts it
        entry = ledger.get(deployment)
        if loaded and entry is None:
            try:  # the replica holds weights the books don't know of (we restarted)
                self.core.scheduler.adopt(deployment, gpu, now)
            except SchedulingError:
                self.core._spawn(self._unload_unbooked(deployment))
                return
        elif not loaded and entry is not None and entry.state is ReplicaState.READY:
            self.replica_lost(deployment)  # weights gone without an unload
            return
        for job_id, dep in list(self.core._orphans_to_resume.items()):
            if dep == deployment and loaded:
                self.core.scheduler.resume(job_id, deployment, gpu, now)
                del self.core._orphans_to_resume[job_id]

    async def _unload_unbooked(self, deployment: str) -> None:
        try:
            if self.ops is not None:
                await self.ops.unload(deployment)
        except Exception as exc:
            log.warning("unload of unbooked %s failed: %r", deployment, exc)

    def pids(self, node_id: str) -> set[int]:
        """Processes of our GPU replicas on a node (their memory is not foreign)."""
        return {
            r.pid for r in self.replicas.values() if r.gpu.node_id == node_id and r.pid is not None
        }

    def remove_node(self, node_id: str) -> None:
        """A node left the cluster: its GPUs and the replicas on them are gone."""
        for dep, report in list(self.replicas.items()):
            if report.gpu.node_id == node_id:
                self.replica_lost(dep)
                del self.replicas[dep]
                self.core.scheduler.set_hosts(dep, [])
        for gpu in [g.ref for g in self.core.scheduler.ledger if g.ref.node_id == node_id]:
            self.core.scheduler.ledger.remove_gpu(gpu)
        self.core._wake.set()


def _seq_of(answer: object) -> int:
    return int(answer.get("seq", 0)) if isinstance(answer, dict) else 0


def _reason_of(exc: Exception) -> str:
    if isinstance(exc, MeshForgeError):
        return exc.message
    cause = getattr(exc, "cause", None)
    if isinstance(cause, MeshForgeError):
        return cause.message
    return f"{type(exc).__name__}: {exc}"


def too_large(model_id: str, need_mib: int, largest_mib: int) -> InsufficientVram:
    """The error of a model that no GPU in the cluster could ever hold."""
    return InsufficientVram(
        f"Model {model_id} needs {need_mib} MiB of VRAM; no GPU in the cluster can hold it "
        f"(largest: {largest_mib} MiB after the safety margin)",
        {"model_id": model_id, "required_mb": need_mib, "largest_gpu_mb": largest_mib},
    )
