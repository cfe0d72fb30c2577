"""Submitting jobs and presenting them: shared by every feature router and the system routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app.context import AppContext
from app.inputs import InputStager
from app.schemas import INPUT_FIELDS, JobQueued, JobRequest
from meshforge.errors import InvalidValue
from meshforge.lifecycle import JobStatus
from persistence import jobs as job_db
from persistence.models import Job, new_job_id

MB = 1024 * 1024


async def submit_job(
    ctx: AppContext,
    feature: str,
    body: JobRequest,
    slots: dict[str, bool],
    owner_id: str | None = None,
) -> JobQueued:
    """Validate, stage inputs, create the row, hand it to the job manager."""
    info = ctx.catalogue.feature(feature)
    choice = ctx.catalogue.choose(feature, body.model_preference)
    fmt = (body.output_format or info.default_output_format).lower()
    if fmt not in choice.spec.output_formats:
        raise InvalidValue(
            f"output_format {fmt!r} is not produced by {choice.model_id}",
            {"output_format": fmt, "supported": list(choice.spec.output_formats)},
        )
    if ctx.catalogue.vram_mb(choice.model_id) > 0:
        await ctx.job_manager().admit(choice.model_id)
    params = body.model_dump(exclude=set(INPUT_FIELDS) | {"output_format", "model_preference"})
    params = {k: v for k, v in params.items() if v is not None or k in ("seed",)}
    job_id = new_job_id()
    stager = InputStager(ctx, job_id, owner_id)
    try:
        inputs = await run_in_threadpool(stager.stage, body, slots)
        job = Job(
            id=job_id,
            feature=feature,
            model_id=choice.model_id,
            model_preference=body.model_preference,
            output_format=fmt,
            params=params,
            inputs=inputs,
            owner_id=owner_id,
        )
        if choice.fallback_from:
            job.params = {**params, "requested_model": choice.fallback_from}
        await run_in_threadpool(job_db.create_job, ctx.engine, job=job)
    except BaseException:
        await run_in_threadpool(stager.cleanup)
        raise
    await ctx.job_manager().submit(job_id)
    message = info.queued_message
    if choice.fallback_from:
        why = (
            "cannot load"
            if choice.fallback_from in ctx.catalogue.unavailable
            else "is not deployed"
        )
        message += f" ({choice.fallback_from} {why} here; using {choice.model_id})"
    return JobQueued(job_id=job_id, status=JobStatus.QUEUED.value, message=message)


@dataclass(frozen=True)
class Links:
    """Where clients reach this application: `origin` is scheme and host (or
    MESHFORGE_PUBLIC_URL), `root` the route prefix Serve mounts it under (ASGI root_path),
    so paths and URLs in responses stay right under `route_prefix: /something`."""

    origin: str
    root: str = ""

    def job_path(self, job_id: str, tail: str = "") -> str:
        return f"{self.root}/api/v1/system/jobs/{job_id}{tail}"

    def job_url(self, job_id: str, tail: str = "") -> str:
        return self.origin + self.job_path(job_id, tail)


def links(ctx: AppContext, request: Request) -> Links:
    root = str(request.scope.get("root_path") or "").rstrip("/")
    origin = ctx.settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
    return Links(origin.rstrip("/"), root)


def file_info(entry: dict[str, Any]) -> dict[str, Any]:
    name = entry["filename"]
    return {
        "filename": name,
        "file_size_bytes": entry["size"],
        "file_size_mb": round(entry["size"] / MB, 3),
        "content_type": entry["content_type"],
        "file_extension": "." + name.rsplit(".", 1)[-1] if "." in name else "",
    }


def primary_file(job: Job) -> dict[str, Any] | None:
    files = (job.result or {}).get("files") or []
    return next((f for f in files if f.get("primary")), None)


def present_result(job: Job, where: Links) -> dict[str, Any] | None:
    if job.status != JobStatus.COMPLETED.value or job.result is None:
        return None
    result = dict(job.result)
    files = result.pop("files", [])
    thumb = result.pop("thumbnail", None)
    out: dict[str, Any] = {}
    main = next((f for f in files if f.get("primary")), None)
    if main is not None:
        out.update(
            output_mesh_path=where.job_path(job.id, "/download"),
            mesh_url=where.job_url(job.id, "/download"),
            mesh_file_info=file_info(main),
        )
    if thumb is not None:
        out.update(
            thumbnail_path=where.job_path(job.id, "/thumbnail"),
            thumbnail_url=where.job_url(job.id, "/thumbnail"),
            thumbnail_file_info=file_info(thumb),
        )
    out["files"] = [
        {**file_info(f), "url": where.job_url(job.id, f"/files/{f['filename']}")} for f in files
    ]
    out.update(result)
    return out


def present_job(job: Job, where: Links, queue: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "feature": job.feature,
        "model_id": job.model_id,
        "model_preference": job.model_preference,
        "output_format": job.output_format,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "processing_time": job.processing_time,
        "progress": {"stage": job.progress_stage, "fraction": round(job.progress_fraction, 3)},
        "attempt": job.attempt,
    }
    if job.status == JobStatus.QUEUED.value:
        body["queue_position"] = (queue or {}).get("queue_position")
        body["waiting_reason"] = (queue or {}).get("waiting_reason")
    if job.status == JobStatus.FAILED.value:
        body["error"] = {"code": job.error_code or "JOB_FAILED", "message": job.error_message}
    if job.status == JobStatus.CANCELLED.value:
        body["message"] = job.error_message or "Cancelled"
    result = present_result(job, where)
    if result is not None:
        body["result"] = result
    return body


def history_row(job: Job, where: Links) -> dict[str, Any]:
    prefix = where.job_path(job.id)
    result = job.result or {}
    done = job.status == JobStatus.COMPLETED.value and bool(result)
    return {
        "job_id": job.id,
        "status": job.status,
        "feature": job.feature,
        "created_at": job.created_at,
        "completed_at": job.completed_at,
        "model_preference": job.model_preference,
        "model_id": job.model_id,
        "processing_time": job.processing_time,
        "output_mesh_path": f"{prefix}/download" if done and primary_file(job) else None,
        "thumbnail_path": f"{prefix}/thumbnail" if done and result.get("thumbnail") else None,
    }
