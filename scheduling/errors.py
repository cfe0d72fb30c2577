"""Typed errors of the scheduling core.

The job manager translates them at its boundary: `ModelTooLarge` becomes the API's
`INSUFFICIENT_VRAM` at submission; `LedgerError`s mean a caller tried a transition the
ledger refuses (a bug or a race) and are never swallowed here.
"""

from __future__ import annotations

from scheduling.ids import GpuRef, ModelId
from scheduling.resources import Vram


class SchedulingError(Exception):
    """Base of every error raised by `scheduling`."""


class UnknownModel(SchedulingError, KeyError):
    """The model has no profile registered with the scheduler."""

    def __init__(self, model_id: ModelId) -> None:
        super().__init__(f"model {model_id!r} is not registered with the scheduler")
        self.model_id = model_id


class ModelTooLarge(SchedulingError):
    """No GPU in the cluster could ever hold the model, even empty (INSUFFICIENT_VRAM)."""

    def __init__(self, model_id: ModelId, need: Vram, largest_room: Vram) -> None:
        super().__init__(
            f"model {model_id!r} needs {need}; the largest GPU offers {largest_room} "
            "after the safety margin"
        )
        self.model_id, self.need, self.largest_room = model_id, need, largest_room


class NotAGpuModel(SchedulingError):
    """A GPU operation (load, unload) asked for a model that needs no GPU."""


class LedgerError(SchedulingError):
    """A ledger operation that would break its bookkeeping or its VRAM invariant."""


class VramExceeded(LedgerError):
    """Reserving this much would take the GPU past capacity minus margin (or past what
    NVML reports free)."""

    def __init__(self, gpu: GpuRef, model_id: ModelId, need: Vram, room: Vram) -> None:
        super().__init__(f"{model_id!r} needs {need} on GPU {gpu}, room is {room}")
        self.gpu, self.model_id, self.need, self.room = gpu, model_id, need, room


class ReplicaExists(LedgerError):
    """The model already has a replica (in any state) on that GPU."""


class ReplicaNotFound(LedgerError, KeyError):
    """No replica of the model on that GPU."""


class ReplicaBusy(LedgerError):
    """The replica has jobs in flight, so it cannot be unloaded."""


class WrongReplicaState(LedgerError):
    """The transition does not apply to the replica's current state."""


class UnknownGpu(LedgerError, KeyError):
    """The GPU is not in the inventory."""


class NoHost(SchedulingError):
    """The model has no replica on the GPU asked for (or on any GPU yet): in a Ray cluster
    a model can only be loaded where Ray placed one of its replicas."""

    def __init__(self, model_id: ModelId, gpu: GpuRef | None = None) -> None:
        where = f"on GPU {gpu}" if gpu is not None else "on any GPU yet"
        super().__init__(f"model {model_id!r} has no replica {where}")
        self.model_id, self.gpu = model_id, gpu
