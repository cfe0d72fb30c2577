"""The Serve deployment around every model: the job wrapper of a replica.

`run(payload)` fetches the inputs from storage, runs the model in a worker thread while an
asyncio task sends heartbeats (with progress) to the job manager, writes the outputs and a
thumbnail under `jobs/{job_id}/outputs/{attempt}/`, and commits the outcome to the job
manager. A refused commit (the attempt was superseded or cancelled) deletes the outputs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from deployments.base import (
    JobCancelled,
    JobContext,
    Model,
    ModelOutput,
    free_accelerator_memory,
)
from deployments.registry import model_class
from meshforge.errors import Conflict, MeshForgeError, ModelNotAvailable
from meshforge.lifecycle import JobStatus
from meshforge.settings import ModelDeploymentConfig, Settings
from persistence.storage import make_store

log = logging.getLogger("meshforge.replica")

COMMIT_DEADLINE_S = 180.0


class ModelReplica:
    """One replica of one deployment; Serve creates it with the deployment name and the
    settings. A deployment serves one model, or several that share weights (the TRELLIS
    family): the job's `model_id` picks the model object.

    CPU models load in the constructor. GPU models (a spec with VRAM) sit on the GPU Ray
    gave the replica and hold no weights until the job manager's scheduler calls
    `load_model`; `unload_model` frees them. The replica reports where it sits and what it
    holds on start and at every health check, so the job manager's VRAM ledger follows it
    across restarts of either side.
    """

    def __init__(self, deployment: str, settings: dict[str, Any]) -> None:
        self.settings = Settings(**settings)
        self.deployment = deployment
        configs = [m for m in self.settings.models if m.deployment_name == deployment]
        if not configs:  # a deployment named after a model that is not listed
            configs = [ModelDeploymentConfig(model_id=deployment)]
        self.models: dict[str, Model] = {
            c.model_id: _construct(model_class(c.model_id), c.options, self.settings)
            for c in configs
        }
        self.model_id = configs[0].model_id
        self.model: Model = self.models[self.model_id]
        self.needs_gpu = any(m.spec.vram_mb > 0 for m in self.models.values())
        self.unavailable = next(
            (r for r in (m.availability() for m in self.models.values()) if r), None
        )
        self.loaded = False
        self.seq = 0  # finished loads and unloads, so the job manager can order reports
        self.busy = 0
        self.store = make_store(self.settings)
        self._jm: Any = None
        self.replica_id, self.gpu = _placement(deployment)
        if not self.needs_gpu:
            self._load_all()
        else:
            self._report_soon()

    def _load_all(self) -> None:
        for model in self.models.values():
            model.load()
        self.loaded = True

    def __del__(self) -> None:
        try:
            for model in self.models.values():
                model.unload()
        except Exception:
            pass

    # ---- the scheduler's hooks (GPU deployments) -------------------------------------------
    async def load_model(self) -> dict[str, Any]:
        """Load the weights (the scheduler reserved their VRAM on this replica's GPU)."""
        if self.unavailable:
            raise ModelNotAvailable(self.unavailable, {"deployment": self.deployment})
        if not self.loaded:
            started = time.perf_counter()
            try:
                await asyncio.to_thread(self._load_all)
            except Exception:
                await asyncio.to_thread(self._unload_all)
                raise
            self.seq += 1
            log.info("%s loaded in %.1fs", self.deployment, time.perf_counter() - started)
        return {"deployment": self.deployment, "loaded": True, "gpu": self.gpu, "seq": self.seq}

    async def unload_model(self) -> dict[str, Any]:
        """Free the weights; refused while a job runs here."""
        if self.busy:
            raise Conflict(f"{self.deployment} is running a job", {"deployment": self.deployment})
        await asyncio.to_thread(self._unload_all)
        self.seq += 1
        return {"deployment": self.deployment, "loaded": False, "gpu": self.gpu, "seq": self.seq}

    def _unload_all(self) -> None:
        for model in self.models.values():
            model.unload()
        self.loaded = False
        free_accelerator_memory()

    async def check_health(self) -> None:
        """Serve's periodic probe: a model's own check once its weights are in (a GPU
        model without weights is healthy, waiting for the scheduler), then the report."""
        if self.loaded:
            for model in self.models.values():
                model.check_health()
        if self.needs_gpu:
            await self._report()

    def _report_soon(self) -> None:
        try:
            self._job_manager().replica_report.remote(self.deployment, self._report_body())
        except Exception as exc:  # no job manager yet: the first health check reports
            log.info("%s: first report deferred: %r", self.deployment, exc)

    def _report_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "replica_id": self.replica_id,
            "gpu": self.gpu,
            "loaded": self.loaded,
            "pid": os.getpid(),
            "unavailable": self.unavailable,
            "seq": self.seq,
        }
        return body

    async def _report(self) -> None:
        try:
            jm = self._job_manager()
            await asyncio.wait_for(
                jm.replica_report.remote(self.deployment, self._report_body()), timeout=10
            )
        except Exception as exc:  # job manager restarting: the next health check reports
            log.info("%s: report not delivered: %r", self.deployment, exc)
            self._jm = None

    # ---- the job wrapper -------------------------------------------------------------
    async def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        job_id, attempt = payload["job_id"], int(payload["attempt"])
        if not self.loaded:  # restarted since the scheduler loaded it: say so, run nothing
            await self._report()
            return {"job_id": job_id, "attempt": attempt, "not_loaded": True}
        ctx = JobContext(job_id, attempt, Path(tempfile.gettempdir()))
        beat = asyncio.get_running_loop().create_task(self._heartbeats(ctx))
        self.busy += 1
        try:
            outcome = await asyncio.to_thread(self._execute, payload, ctx)
        except asyncio.CancelledError:
            ctx.cancelled.set()  # stops the worker thread at its next progress call
            raise
        finally:
            self.busy -= 1
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
                model = self.models.get(payload.get("model_id") or self.model_id, self.model)
                output = model.run(ctx, inputs, params)
                seconds = time.perf_counter() - started
                ctx.progress("storing outputs", 0.9)
                result = self._store_outputs(job_id, attempt, model, output, payload, seconds)
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
        except Exception as exc:  # a replica's job wrapper: log, report a readable failure
            self.store.delete_prefix(self._prefix(job_id, attempt))
            if type(exc).__name__ == "OutOfMemoryError":  # torch's, from an adapter's own code
                free_accelerator_memory()
                return {
                    "status": JobStatus.FAILED.value,
                    "error_code": "INSUFFICIENT_VRAM",
                    "error_message": f"{self.model_id} ran out of GPU memory on this input",
                }
            log.exception("job %s attempt %d failed", job_id, attempt)
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
        model: Model,
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
        spec = model.spec
        generation_info = {
            "model_used": spec.model_id,
            "method": spec.method,
            "approximate": spec.approximate,
            "parameters": {**payload["params"], "output_format": payload["output_format"]},
            "thumbnail_generated": thumbnail is not None,
            "thumbnail_renderer": renderer,
            "inference_time_s": round(seconds, 3),
            **output.generation_info,
        }
        if self.needs_gpu:
            generation_info["gpu"] = {"node_id": self.gpu[0], "index": self.gpu[1]}
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
                # asyncio.timeout: wait_for (3.11) may swallow the cancel that ends the loop
                async with asyncio.timeout(max(5.0, 3 * interval)):
                    keep = await jm.heartbeat.remote(
                        ctx.job_id, ctx.attempt, ctx.stage, ctx.fraction
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


def _construct(cls: type[Model], options: dict[str, Any], settings: Settings) -> Model:
    """Build a model from its deployment options; models that read weights get the
    configured weights root unless their options name one."""
    kwargs = dict(options)
    if "weights_root" in inspect.signature(cls).parameters:
        kwargs.setdefault("weights_root", str(settings.weights_dir))
    return cls(**kwargs)


def _placement(deployment: str) -> tuple[str, tuple[str, int]]:
    """This replica's id and the GPU Ray gave it: (node id, GPU index on the node). A
    replica with no GPU reports index -1."""
    import ray
    from ray import serve

    try:
        replica_id = serve.get_replica_context().replica_id.unique_id
    except Exception:  # constructed outside Serve (tests)
        replica_id = f"{deployment}-{os.getpid()}"
    try:
        node_id = ray.get_runtime_context().get_node_id()
        ids = ray.get_gpu_ids()
    except Exception:
        return replica_id, ("local", -1)
    return replica_id, (node_id, int(ids[0]) if ids else -1)
