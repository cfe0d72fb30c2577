"""Upstream steps run in a process of their own (Blender's `bpy` keeps one global scene and
is not thread-safe, so every bpy step gets a fresh interpreter).

The step is polled so a cancelled job stops it, its output is kept in a log file of the
job, and a failure becomes ModelOutOfMemory (CUDA OOM in its output) or ModelInputError
with the end of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from deployments.base import JobContext, ModelInputError, ModelOutOfMemory

POLL_S = 0.5
LOG_TAIL = 1500
_OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")


def log_tail(log: Path, size: int = LOG_TAIL, start: int = 0) -> str:
    """The last `size` characters of a log from byte `start` on (empty if it has none)."""
    try:
        with log.open("rb") as fh:
            fh.seek(start)
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-size:].strip()


def run_step(
    ctx: JobContext,
    model_id: str,
    stage: str,
    command: Sequence[str],
    cwd: Path | str | None,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> None:
    """Run `command` to completion in its own process group, checking for cancellation.

    Raises JobCancelled (the process group is killed), ModelOutOfMemory when the step's
    output reports a CUDA OOM, and ModelInputError for any other non-zero exit or timeout.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    with log.open("ab") as sink:
        sink.write(f"$ {' '.join(command)}\n".encode())
        sink.flush()
        start = sink.tell()
        process = subprocess.Popen(
            list(command),
            cwd=str(cwd) if cwd is not None else None,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while process.poll() is None:
                ctx.check_cancelled()
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    _kill(process)
                    raise ModelInputError(
                        f"{model_id} failed during {stage}: no result after {timeout_s:.0f} s"
                    )
                time.sleep(POLL_S)
        except BaseException:
            _kill(process)
            raise
    if process.returncode != 0:
        tail = log_tail(log, start=start)
        if any(marker in tail for marker in _OOM_MARKERS):
            raise ModelOutOfMemory(f"{model_id} ran out of GPU memory during {stage}", detail=tail)
        raise ModelInputError(
            f"{model_id} failed during {stage} (exit status {process.returncode}): {tail}"
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()
