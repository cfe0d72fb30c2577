"""The model contract: a spec beside each model, hooks to load and run, and typed outputs.

A model implements `load()` and `run()`; the replica wrapper (`deployments.replica`) does
everything around it: fetching inputs, heartbeats, cancellation, writing outputs and
thumbnails, and committing the result to the job manager.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from meshforge.errors import MeshForgeError


@dataclass(frozen=True)
class ModelSpec:
    """What the scheduler and the API need to know about a model, without loading it."""

    model_id: str
    feature: str
    description: str
    method: str
    vram_mb: int = 0
    ram_mb: int = 512
    load_time_s: float = 1.0
    inputs: tuple[str, ...] = ("mesh",)
    output_formats: tuple[str, ...] = ("glb",)
    default_params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    approximate: bool = False


def free_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver, if torch has CUDA (after
    an unload or an out-of-memory failure; never imports torch itself)."""
    gc.collect()
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
    except Exception:
        pass


class JobCancelled(Exception):
    """Raised inside a model run when its job was cancelled or superseded."""


class JobContext:
    """Handed to `run()`: progress reporting that doubles as a cancellation point."""

    def __init__(
        self,
        job_id: str,
        attempt: int,
        work_dir: Path,
        on_progress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.work_dir = work_dir
        self.cancelled = threading.Event()
        self.stage = "starting"
        self.fraction = 0.0
        self._on_progress = on_progress

    def progress(self, stage: str, fraction: float) -> None:
        """Record progress (0..1) and stop the run if the job was cancelled."""
        self.stage = stage
        self.fraction = max(0.0, min(1.0, fraction))
        if self._on_progress is not None:
            self._on_progress(self.stage, self.fraction)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)


@dataclass
class OutputFile:
    """One file a model produced; `primary` marks the download of the job."""

    filename: str
    data: bytes
    content_type: str
    primary: bool = False


@dataclass
class ModelOutput:
    files: list[OutputFile]
    preview: Any = None
    """A trimesh Trimesh or Scene to render the thumbnail from (None: no thumbnail)."""
    result: dict[str, Any] = field(default_factory=dict)
    """Feature-specific result fields (e.g. `original_stats`), merged into the job result."""
    generation_info: dict[str, Any] = field(default_factory=dict)


class ModelInputError(MeshForgeError):
    """The input cannot be processed by this model; the job fails with JOB_FAILED."""

    status_code = 422
    code = "JOB_FAILED"


class ModelOutOfMemory(MeshForgeError):
    """The GPU ran out of memory during a job; the job fails with INSUFFICIENT_VRAM and the
    replica frees its caches and keeps serving."""

    status_code = 507
    code = "INSUFFICIENT_VRAM"


class Model:
    """Base of every model. Subclasses set `spec` and implement `run`."""

    spec: ClassVar[ModelSpec]

    def availability(self) -> str | None:
        """None if the model can load here; otherwise why not (a missing package or
        weights). An unavailable model is reported in `/api/v1/system/models` and not
        offered; it must never fail at import or construction."""
        return None

    def load(self) -> None:
        """Load weights or warm caches; called once in the replica, never at import."""

    def unload(self) -> None:
        """Free what `load` took."""

    def check_health(self) -> None:
        """Raise if the model cannot serve."""

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        raise NotImplementedError
