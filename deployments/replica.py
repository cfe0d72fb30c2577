"""The Serve deployment around every model: the job wrapper of a replica.

`run(payload)` fetches the inputs from storage, runs the model in a worker thread while an
asyncio task sends heartbeats (with progress) to the job manager, writes the outputs and a
thumbnail under `jobs/{job_id}/outputs/{attempt}/`, and commits the outcome to the job
manager. A refused commit (the attempt was superseded or cancelled) deletes the outputs.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from deployments.base import JobCancelled, JobContext, Model, ModelOutput
from deployments.registry import model_class
from meshforge.errors import MeshForgeError
from meshforge.lifecycle import JobStatus
from meshforge.settings import Settings
from persistence.storage import make_store

log = logging.getLogger("meshforge.replica")

COMMIT_DEADLINE_S = 180.0


class ModelReplica:
    """One replica of one model; Serve creates it with the model id and the settings."""

    def __init__(self, model_id: str, settings: dict[str, Any]) -> None:
        self.settings = Settings(**settings)
        self.model_id = model_id
        options = next((m.options for m in self.settings.models if m.model_id == model_id), {})
        self.model: Model = model_class(model_id)(**options)
        self.model.load()
        self.store = make_store(self.settings)
        self._jm: Any = None

    def check_health(self) -> None:
        self.model.check_health()

    def __del__(self) -> None:
        try:
            self.model.unload()
        except Exception:
            pass

    # ---- the job wrapper -------------------------------------------------------------
    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        job_id, attempt = payload["job_id"], int(payload["attempt"])
        ctx = JobContext(job_id, attempt, Path(tempfile.gettempdir()))
        beat = asyncio.get_running_loop().create_task(self._heartbeats(ctx))
        try:
            outcome = await asyncio.to_thread(self._execute, payload, ctx)
        except asyncio.CancelledError:
            ctx.cancelled.set()  # stops the worker thread at its next progress call
            raise
        finally:
            beat.cancel()
        accepted = await self._commit(job_id, attempt, outcome)
        if not accepted and outcome["status"] == JobStatus.COMPLETED.value:
            await asyncio.to_thread(self.store.delete_prefix, self._prefix(job_id, attempt))
        return {"job_id": job_id, "attempt": attempt, "accepted": accepted}

    def _execute(self, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        job_id, attempt = ctx.job_id, ctx.attempt
        try:
            with tempfile.TemporaryDirectory(prefix=f"{job_id}-") as tmp:
                ctx.work_dir = Path(tmp)
                ctx.progress("fetching inputs", 0.01)
                inputs = self._fetch_inputs(payload["inputs"], Path(tmp) / "inputs")
                params = {**payload["params"], "output_format": payload["output_format"]}
                started = time.perf_counter()
                output = self.model.run(ctx, inputs, params)
                seconds = time.perf_counter() - started
                ctx.progress("storing outputs", 0.9)
                result = self._store_outputs(job_id, attempt, output, payload, seconds)
                return {"status": JobStatus.COMPLETED.value, "result": result}
        except JobCancelled:
            self.store.delete_prefix(self._prefix(job_id, attempt))
            return {"status": JobStatus.CANCELLED.value}
        except MeshForgeError as exc:
            return {
                "status": JobStatus.FAILED.value,
                "error_code": exc.code,
                "error_message": exc.message,
            }
        except Exception:  # a replica's job wrapper: log, report a readable failure
            log.exception("job %s attempt %d failed", job_id, attempt)
            self.store.delete_prefix(self._prefix(job_id, attempt))
            return {
                "status": JobStatus.FAILED.value,
                "error_code": "JOB_FAILED",
                "error_message": f"{self.model_id} failed while processing the input",
            }

    def _fetch_inputs(self, refs: dict[str, Any], folder: Path) -> dict[str, Path]:
        paths: dict[str, Path] = {}
        for name, ref in refs.items():
            target = folder / name / ref["filename"]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.store.get_file(ref["key"], target)
            paths[name] = target
        return paths

    @staticmethod
    def _prefix(job_id: str, attempt: int) -> str:
        return f"jobs/{job_id}/outputs/{attempt}/"

    def _store_outputs(
        self,
        job_id: str,
        attempt: int,
        output: ModelOutput,
        payload: dict[str, Any],
        seconds: float,
    ) -> dict[str, Any]:
        prefix = self._prefix(job_id, attempt)
        files = []
        for item in output.files:
            info = self.store.put_bytes(prefix + item.filename, item.data, item.content_type)
            files.append(
                {
                    "key": info.key,
                    "filename": item.filename,
                    "size": info.size,
                    "content_type": item.content_type,
                    "primary": item.primary,
                }
            )
        thumbnail, renderer = None, None
        if output.preview is not None:
            from deployments.geometry.render import render_thumbnail

            png, renderer = render_thumbnail(output.preview, size=512)
            info = self.store.put_bytes(prefix + "thumbnail.png", png, "image/png")
            thumbnail = {
                "key": info.key,
                "filename": "thumbnail.png",
                "size": info.size,
                "content_type": "image/png",
            }
        spec = self.model.spec
        generation_info = {
            "model_used": self.model_id,
            "method": spec.method,
            "approximate": spec.approximate,
            "parameters": {**payload["params"], "output_format": payload["output_format"]},
            "thumbnail_generated": thumbnail is not None,
            "thumbnail_renderer": renderer,
            "inference_time_s": round(seconds, 3),
            **output.generation_info,
        }
        return {
            "files": files,
            "thumbnail": thumbnail,
            "generation_info": generation_info,
            **output.result,
        }

    # ---- talking to the job manager ------------------------------------------------------
    def _job_manager(self, refresh: bool = False) -> Any:
        if self._jm is None or refresh:
            from meshforge.runtime import job_manager

            self._jm = job_manager(self.settings)
        return self._jm

    async def _heartbeats(self, ctx: JobContext) -> None:
        interval = self.settings.heartbeat_interval_s
        while True:
            try:
                jm = self._job_manager()
                keep = await asyncio.wait_for(
                    jm.heartbeat.remote(ctx.job_id, ctx.attempt, ctx.stage, ctx.fraction),
                    timeout=max(5.0, 3 * interval),
                )
                if keep is False:
                    ctx.cancelled.set()
            except Exception as exc:  # job manager restarting: keep working, try again
                log.info("heartbeat for %s not delivered: %r", ctx.job_id, exc)
                self._jm = None
            await asyncio.sleep(interval)

    async def _commit(self, job_id: str, attempt: int, outcome: dict[str, Any]) -> bool:
        """Deliver the outcome, waiting out a job-manager restart; True if accepted."""
        deadline = time.monotonic() + COMMIT_DEADLINE_S
        while True:
            try:
                jm = self._job_manager()
                return bool(
                    await asyncio.wait_for(jm.finish.remote(job_id, attempt, outcome), timeout=30)
                )
            except Exception as exc:
                if time.monotonic() > deadline:
                    log.error("job %s: result could not be committed: %r", job_id, exc)
                    return False
                self._jm = None
                await asyncio.sleep(1.0)
