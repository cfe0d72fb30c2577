"""Simulated GPU models: they occupy their declared VRAM and wait, then segment for real.

They let the VRAM scheduler be exercised end to end on machines without a GPU (Ray
logical GPUs from `ray start --num-gpus=N` plus a simulated inventory) and measured on
machines with one: where CUDA is available, `load` really allocates the declared VRAM.
Sizes are chosen around a 24 GiB card: `large` and `medium` cannot be resident on one
together, `small` fits beside either, `huge` fits on no such card. Only deployed where a
configuration lists them, never by the default profile.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from deployments.base import JobContext, ModelOutput, ModelSpec
from deployments.spectral_mesh_segmentation import SpectralSegmentation


def _spec(size: str, vram_mb: int) -> ModelSpec:
    return ModelSpec(
        model_id=f"gpu_sim_{size}_mesh_segmentation",
        feature="mesh_segmentation",
        description=f"Test model: holds {vram_mb} MiB of VRAM, waits, then segments",
        method="Simulated GPU model (declared VRAM, delay), then spectral clustering",
        vram_mb=vram_mb,
        load_time_s=1.0,
        output_formats=("glb", "json"),
        default_params={"num_parts": 4},
        details={"device": "simulated GPU", "testing": True},
        approximate=True,
    )


class SimulatedGpuSegmentation(SpectralSegmentation):
    """Base of the simulated GPU models; `seconds` per job, `load_seconds` per load."""

    spec: ClassVar[ModelSpec]

    def __init__(self, seconds: float = 2.0, load_seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.load_seconds = load_seconds
        self._block: Any = None
        self.loaded = False

    def load(self) -> None:
        time.sleep(self.load_seconds)
        try:
            import torch

            if torch.cuda.is_available():
                count = self.spec.vram_mb * 1024 * 1024
                self._block = torch.empty(count, dtype=torch.uint8, device="cuda")
        except ImportError:
            pass
        self.loaded = True

    def unload(self) -> None:
        self._block = None
        self.loaded = False

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        if not self.loaded:
            raise RuntimeError(f"{self.spec.model_id} ran without its weights")
        steps = max(1, int(self.seconds / 0.1))
        for i in range(steps):
            ctx.progress("simulated inference", 0.5 * i / steps)
            time.sleep(self.seconds / steps)
        output = super().run(ctx, inputs, params)
        output.generation_info["simulated_vram_mb"] = self.spec.vram_mb
        return output


class SimulatedGpuLarge(SimulatedGpuSegmentation):
    spec = _spec("large", 16384)


class SimulatedGpuMedium(SimulatedGpuSegmentation):
    spec = _spec("medium", 12288)


class SimulatedGpuSmall(SimulatedGpuSegmentation):
    spec = _spec("small", 4096)


class SimulatedGpuHuge(SimulatedGpuSegmentation):
    spec = _spec("huge", 40960)
