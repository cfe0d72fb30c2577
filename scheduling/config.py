"""Tunables of the scheduling policy, with the reason for each default."""

from __future__ import annotations

from dataclasses import dataclass

from scheduling.resources import Vram


@dataclass(frozen=True)
class SchedulerConfig:
    """Tunables of the policy."""

    margin: Vram = Vram(512)
    """Kept free on every GPU for CUDA contexts and fragmentation."""
    max_jobs_per_gpu: int = 1
    """Jobs one GPU runs at once, all models together; 0 means no limit."""
    min_resident_s: float = 60.0
    """A model loaded less than this long ago is evicted only if nothing else can go."""
    scale_out: bool = True
    """Start extra replicas of a model whose backlog drains slower than a load."""
    max_replicas_per_model: int = 0
    """Cap on replicas of one model; 0 means one per GPU."""
    service_ewma_weight: float = 0.2
    """Weight of the newest job in the running estimate of a model's service time."""
    intent_timeout_s: float = 600.0
    """A load waiting this long for unloads to free its room is planned afresh."""
