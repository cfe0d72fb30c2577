"""The scheduler's view of a model: how much VRAM a replica needs, how long it takes to
load, and how many jobs one replica runs at once.

The full model spec (inputs, outputs, defaults) lives beside each deployment; this is
the small, immutable part the scheduling decisions depend on. `ModelProfile.from_spec`
reads any object with `model_id`, `vram_mb` and `load_time_s` attributes (the
deployments' `ModelSpec`) without importing it, so `scheduling/` stays free of Ray and
of the model packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from scheduling.ids import ModelId
from scheduling.resources import Vram


class DeclaredSpec(Protocol):
    """What `ModelProfile.from_spec` reads from a deployment's spec."""

    @property
    def model_id(self) -> str: ...

    @property
    def vram_mb(self) -> int: ...

    @property
    def load_time_s(self) -> float: ...


@dataclass(frozen=True)
class ModelProfile:
    """Scheduling facts about one model.

    `vram` is the measured peak of one replica (weights plus activations), `load_time_s`
    an estimate used to decide whether starting another replica beats waiting for a busy
    one, `service_time_s` a prior for the mean job duration (refined from observed jobs),
    `max_concurrency` the jobs one replica runs at once.

    A model with zero VRAM needs no GPU (the CPU models): the scheduler keeps it off the
    ledger and dispatches up to `max_concurrency` of its jobs at once, to any replica,
    so one queue structure serves every model.
    """

    model_id: ModelId
    vram: Vram
    load_time_s: float = 30.0
    max_concurrency: int = 1
    service_time_s: float = 60.0

    def __post_init__(self) -> None:
        if self.vram.mib < 0:
            raise ValueError(f"{self.model_id}: negative VRAM figure")
        if self.max_concurrency < 1:
            raise ValueError(f"{self.model_id}: max_concurrency must be at least 1")
        if self.load_time_s < 0 or self.service_time_s <= 0:
            raise ValueError(f"{self.model_id}: times must be positive")

    @property
    def needs_gpu(self) -> bool:
        return self.vram.mib > 0

    @classmethod
    def from_spec(cls, spec: DeclaredSpec, max_concurrency: int = 1) -> ModelProfile:
        """The scheduling view of a deployment's spec (VRAM in MB is taken as MiB, the
        unit the measured peaks are published in). For a CPU model (no VRAM),
        `max_concurrency` is the jobs all its replicas run at once."""
        return cls(
            model_id=spec.model_id,
            vram=Vram(int(spec.vram_mb)),
            load_time_s=float(spec.load_time_s),
            max_concurrency=max_concurrency,
        )
