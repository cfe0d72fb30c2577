"""Typed decisions the scheduler returns, and why a job is still waiting.

The caller (the job manager actor, or the simulator) executes `Load`, `Unload` and
`Dispatch` and reports back when they finish; the scheduler never performs them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from scheduling.ids import GpuRef, JobId, ModelId
from scheduling.ledger import Replica, ReplicaState
from scheduling.resources import Vram


class WaitReason(StrEnum):
    """Why a queued job has not been dispatched, for its status page."""

    WAITING_FOR_REPLICA = "waiting_for_replica"
    """The model is resident; every replica is busy with other jobs."""
    WAITING_FOR_GPU = "waiting_for_gpu"
    """A replica is free, but its GPU is running another model's job (one job per GPU)."""
    LOADING = "loading"
    """A replica of the model is being loaded."""
    WAITING_FOR_UNLOAD = "waiting_for_unload"
    """Idle models are being unloaded to make room for this one."""
    WAITING_FOR_VRAM = "waiting_for_vram"
    """No GPU has room, and the models that hold it are busy; room appears as they finish."""
    WAITING_FOR_PLACEMENT = "waiting_for_placement"
    """No replica of the model has been placed on a GPU yet (Ray is starting it)."""


class UnloadReason(StrEnum):
    """Why a replica is unloaded."""

    MAKE_ROOM = "make_room"
    """Evicted (least recently used idle model) so that a waiting model can load."""
    FOREIGN_MEMORY = "foreign_memory"
    """Processes outside our control grew and the GPU's budget shrank below the ledger."""
    MANUAL = "manual"
    """An operator asked for it."""


@dataclass(frozen=True)
class Dispatch:
    """Send `job_id` to the replica of `model_id` on `gpu` (None: any replica, the legacy
    per-model-slot path of `JobQueues.plan`)."""

    job_id: JobId
    model_id: ModelId
    gpu: GpuRef | None = None


@dataclass(frozen=True)
class Load:
    """Start a replica of `model_id` on `gpu`; its VRAM is already reserved in the ledger.
    Report `Scheduler.load_finished` when it is ready (or failed)."""

    model_id: ModelId
    gpu: GpuRef
    vram: Vram


@dataclass(frozen=True)
class Unload:
    """Stop the replica of `model_id` on `gpu`; its VRAM stays booked until the caller
    reports `Scheduler.unload_finished`, so no load can race the memory being freed."""

    model_id: ModelId
    gpu: GpuRef
    reason: UnloadReason


@dataclass
class Plan:
    """Everything one scheduling pass decided. Execute unloads, then loads, then
    dispatches; `waiting` maps every job still queued to its reason."""

    dispatches: list[Dispatch] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    unloads: list[Unload] = field(default_factory=list)
    waiting: dict[JobId, WaitReason] = field(default_factory=dict)

    def has_actions(self) -> bool:
        """True if the caller has anything to execute."""
        return bool(self.dispatches or self.loads or self.unloads)


def wait_reason_for(replicas: list[Replica], slots: int, room_coming: bool) -> WaitReason:
    """Why a model's queued jobs wait, given its replicas (`slots` jobs each) and whether
    unloads are under way to make room for it."""
    ready = [r for r in replicas if r.state is ReplicaState.READY]
    if ready and all(r.in_flight >= slots for r in ready):
        return WaitReason.WAITING_FOR_REPLICA
    if ready:
        return WaitReason.WAITING_FOR_GPU
    if any(r.state is ReplicaState.LOADING for r in replicas):
        return WaitReason.LOADING
    if room_coming:
        return WaitReason.WAITING_FOR_UNLOAD
    return WaitReason.WAITING_FOR_VRAM
