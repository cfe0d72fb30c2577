"""The VRAM ledger: per GPU, which models are resident or being loaded, and how much
memory they hold.

Invariant, per GPU: ``resident + reserved <= total - margin - used_by_others``. Every
operation that adds memory checks it first and raises `VramExceeded` instead of breaking
it. A load in progress is booked as a reservation from the moment it is decided, and an
unload keeps its memory booked until it is confirmed, so two decisions can never count on
the same MiB. NVML's reported free memory gates loads as well: a reservation also needs
``reported_free - margin - reserved`` to hold it, which catches memory the declarations
do not know about (a CUDA context, a leak, another tenant).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from scheduling.errors import (
    ReplicaBusy,
    ReplicaExists,
    ReplicaNotFound,
    UnknownGpu,
    VramExceeded,
    WrongReplicaState,
)
from scheduling.ids import GpuRef, ModelId
from scheduling.inventory import GpuInfo, GpuInventory
from scheduling.resources import Vram


class ReplicaState(StrEnum):
    LOADING = "loading"
    """VRAM reserved, weights on their way; takes no jobs yet."""
    READY = "ready"
    """Resident and serving."""
    UNLOADING = "unloading"
    """Being stopped; still holds its VRAM until the unload is confirmed."""


@dataclass
class Replica:
    """One model's footprint on one GPU (at most one replica per model per GPU)."""

    model_id: ModelId
    gpu: GpuRef
    vram: Vram
    state: ReplicaState
    since: float
    last_used: float
    in_flight: int = 0
    loaded_at: float | None = None

    @property
    def idle(self) -> bool:
        """Resident with no job in flight: the only kind of replica that may be evicted."""
        return self.state is ReplicaState.READY and self.in_flight == 0


class GpuLedger:
    """The books of one GPU."""

    def __init__(self, info: GpuInfo, margin: Vram) -> None:
        self.info = info
        self.margin = margin
        self._replicas: dict[ModelId, Replica] = {}

    @property
    def ref(self) -> GpuRef:
        return self.info.ref

    def replicas(self) -> list[Replica]:
        return list(self._replicas.values())

    def get(self, model_id: ModelId) -> Replica | None:
        return self._replicas.get(model_id)

    def _sum(self, *states: ReplicaState) -> Vram:
        return Vram.sum_of(r.vram for r in self._replicas.values() if r.state in states)

    @property
    def budget(self) -> Vram:
        """What our models may hold in total: capacity less margin less foreign memory."""
        return self.info.total - self.margin - self.info.used_by_others

    @property
    def reserved(self) -> Vram:
        return self._sum(ReplicaState.LOADING)

    @property
    def resident(self) -> Vram:
        return self._sum(ReplicaState.READY, ReplicaState.UNLOADING)

    @property
    def unloading(self) -> Vram:
        return self._sum(ReplicaState.UNLOADING)

    @property
    def committed(self) -> Vram:
        return self.resident + self.reserved

    @property
    def load_room(self) -> Vram:
        """Room for a new load now: the smaller of what the declarations leave and what
        NVML reports free (less the margin and the loads not yet materialised)."""
        declared = self.budget - self.committed
        reported = self.info.free - self.margin - self.reserved
        return min(declared, reported).clamp()

    @property
    def overcommit(self) -> Vram:
        """How far the books exceed the budget; only foreign memory growth causes this."""
        return (self.committed - self.budget).clamp()

    @property
    def in_flight(self) -> int:
        """Jobs running on this GPU, all models together (its compute load)."""
        return sum(r.in_flight for r in self._replicas.values())

    def can_ever_hold(self, need: Vram) -> bool:
        """Whether the GPU, emptied of everything we run, could hold `need`."""
        return (self.info.total - self.margin).can_fit(need)

    def invariant_holds(self) -> bool:
        return self.budget.can_fit(self.committed)

    def _require(self, model_id: ModelId, *states: ReplicaState) -> Replica:
        replica = self._replicas.get(model_id)
        if replica is None:
            raise ReplicaNotFound(f"no replica of {model_id!r} on GPU {self.ref}")
        if states and replica.state not in states:
            raise WrongReplicaState(
                f"replica of {model_id!r} on GPU {self.ref} is {replica.state.value}"
            )
        return replica

    def reserve(self, model_id: ModelId, need: Vram, now: float) -> Replica:
        """Book VRAM for a load about to start."""
        if model_id in self._replicas:
            raise ReplicaExists(f"{model_id!r} already has a replica on GPU {self.ref}")
        room = self.load_room
        if not room.can_fit(need):
            raise VramExceeded(self.ref, model_id, need, room)
        replica = Replica(model_id, self.ref, need, ReplicaState.LOADING, now, now)
        self._replicas[model_id] = replica
        return replica

    def mark_ready(self, model_id: ModelId, now: float) -> Replica:
        replica = self._require(model_id, ReplicaState.LOADING)
        replica.state, replica.since, replica.loaded_at = ReplicaState.READY, now, now
        replica.last_used = now
        return replica

    def begin_unload(self, model_id: ModelId, now: float) -> Replica:
        """Start unloading an idle replica; a replica with jobs in flight is refused."""
        replica = self._require(model_id, ReplicaState.READY)
        if replica.in_flight:
            raise ReplicaBusy(
                f"{model_id!r} on GPU {self.ref} has {replica.in_flight} job(s) in flight"
            )
        replica.state, replica.since = ReplicaState.UNLOADING, now
        return replica

    def remove(self, model_id: ModelId) -> Replica:
        """Forget a replica whatever its state: unload confirmed, load failed, or replica
        lost. Its VRAM is free again."""
        replica = self._require(model_id)
        del self._replicas[model_id]
        return replica

    def acquire(self, model_id: ModelId, now: float) -> Replica:
        """A job starts on the replica."""
        replica = self._require(model_id, ReplicaState.READY)
        replica.in_flight += 1
        replica.last_used = now
        return replica

    def release(self, model_id: ModelId, now: float) -> Replica:
        """A job on the replica ended (any outcome)."""
        replica = self._require(model_id)
        replica.in_flight = max(0, replica.in_flight - 1)
        replica.last_used = now
        return replica

    def update(self, info: GpuInfo) -> None:
        """Take a newer reading of the same GPU."""
        if info.ref != self.ref:
            raise UnknownGpu(f"reading for {info.ref} given to ledger of {self.ref}")
        self.info = info


class Ledger:
    """The books of every GPU in the cluster."""

    def __init__(self, inventory: GpuInventory, margin: Vram) -> None:
        self.margin = margin
        self._gpus: dict[GpuRef, GpuLedger] = {g.ref: GpuLedger(g, margin) for g in inventory}

    def __iter__(self) -> Iterator[GpuLedger]:
        return iter(self._gpus[ref] for ref in sorted(self._gpus))

    def __len__(self) -> int:
        return len(self._gpus)

    def gpu(self, ref: GpuRef) -> GpuLedger:
        try:
            return self._gpus[ref]
        except KeyError:
            raise UnknownGpu(f"GPU {ref} is not in the inventory") from None

    def gpu_or_none(self, ref: GpuRef) -> GpuLedger | None:
        return self._gpus.get(ref)

    def update(self, info: GpuInfo) -> None:
        """A new reading; a GPU not seen before joins the cluster."""
        if info.ref in self._gpus:
            self._gpus[info.ref].update(info)
        else:
            self._gpus[info.ref] = GpuLedger(info, self.margin)

    def remove_gpu(self, ref: GpuRef) -> list[Replica]:
        """A node left: forget its GPU and return the replicas that went with it."""
        ledger = self._gpus.pop(ref, None)
        return ledger.replicas() if ledger is not None else []

    def replicas(self, model_id: ModelId) -> list[Replica]:
        """Every replica of the model, in GPU order."""
        found = (g.get(model_id) for g in self)
        return [r for r in found if r is not None]

    def fits_anywhere(self, need: Vram) -> bool:
        """Whether some GPU, emptied, could hold `need` (else: INSUFFICIENT_VRAM)."""
        return any(g.can_ever_hold(need) for g in self._gpus.values())

    def largest_room(self) -> Vram:
        """The most any single model could get: the biggest GPU less the margin."""
        return max((g.info.total - self.margin for g in self._gpus.values()), default=Vram(0))

    def invariant_holds(self) -> bool:
        return all(g.invariant_holds() for g in self._gpus.values())
