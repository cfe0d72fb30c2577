"""A test model: waits a configured time (in cancellable steps), then segments for real.

It gives integration tests a job that is reliably still running when they interrupt it
(cancel, kill the job manager, kill the replica), whatever the machine's speed. It is only
deployed where a configuration lists it, never by the default profile.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deployments.base import JobContext, ModelOutput, ModelSpec
from deployments.spectral_mesh_segmentation import SpectralSegmentation


class SleepSegmentation(SpectralSegmentation):
    spec = ModelSpec(
        model_id="sleep_mesh_segmentation",
        feature="mesh_segmentation",
        description="Test model: waits, then runs spectral segmentation",
        method="Delay for tests, then spectral clustering",
        output_formats=("glb", "json"),
        default_params={"num_parts": 8},
        details={"device": "cpu", "testing": True},
        approximate=True,
    )

    def __init__(self, seconds: float = 3.0) -> None:
        self.seconds = seconds

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        steps = max(1, int(self.seconds / 0.1))
        for i in range(steps):
            ctx.progress("waiting (test model)", 0.5 * i / steps)
            time.sleep(self.seconds / steps)
        return super().run(ctx, inputs, params)
