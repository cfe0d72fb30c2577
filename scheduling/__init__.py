"""Pure-Python scheduling core: no Ray imports, so every decision is unit-testable.

Public surface (everything else is internal):

* `Scheduler`, `SchedulerConfig`: state in, typed decisions out (`scheduling.policy`).
* `Plan` with `Dispatch`, `Load`, `Unload`, and `WaitReason`, `UnloadReason`.
* `ModelProfile`: what the scheduler needs to know about a model.
* `GpuInfo`, `GpuInventory`, `parse_simulated_inventory`, `inventory_from_config`.
* `Vram` (integer MiB) and `GpuRef` (node id, GPU index).
* Errors: `ModelTooLarge` (INSUFFICIENT_VRAM), `UnknownModel`, `LedgerError` and kin.
* `JobQueues`: the per-model queues, also usable alone with fixed per-model slots.
"""

from scheduling.config import SchedulerConfig
from scheduling.decisions import Dispatch, Load, Plan, Unload, UnloadReason, WaitReason
from scheduling.errors import (
    LedgerError,
    ModelTooLarge,
    NoHost,
    NotAGpuModel,
    ReplicaBusy,
    SchedulingError,
    UnknownModel,
    VramExceeded,
)
from scheduling.ids import GpuRef
from scheduling.inventory import (
    GpuInfo,
    GpuInventory,
    InventoryError,
    inventory_from_config,
    parse_simulated_inventory,
)
from scheduling.models import ModelProfile
from scheduling.policy import Scheduler
from scheduling.queue import JobQueues
from scheduling.resources import Vram

__all__ = [
    "Dispatch",
    "GpuInfo",
    "GpuInventory",
    "GpuRef",
    "InventoryError",
    "JobQueues",
    "LedgerError",
    "Load",
    "ModelProfile",
    "ModelTooLarge",
    "NoHost",
    "NotAGpuModel",
    "Plan",
    "ReplicaBusy",
    "Scheduler",
    "SchedulerConfig",
    "SchedulingError",
    "Unload",
    "UnloadReason",
    "UnknownModel",
    "Vram",
    "VramExceeded",
    "WaitReason",
    "inventory_from_config",
    "parse_simulated_inventory",
]
