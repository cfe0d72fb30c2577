"""System routes: health, features and models, supported formats, jobs and downloads."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.deps import Caller, Ctx, OwnedJob, scope_of
from app.inputs import parse_iso
from app.jobs import MB, file_info, history_row, links, present_job, primary_file
from app.validation import safe_filename
from meshforge.errors import Conflict, JobFailed, NotFound
from meshforge.features import FEATURES, IMAGE_IN, MESH_IN, MESH_OUT
from meshforge.lifecycle import JobStatus
from persistence import jobs as job_db
from persistence.models import Job, utcnow
from persistence.storage import ObjectNotFound

router = APIRouter(prefix="/api/v1/system", tags=["System"])
health_router = APIRouter(tags=["System"])

DownloadFormat = Literal["file", "base64"]
DATE_TIME = {"format": "date-time"}  # documented as date-time; a bare date is accepted too
MAX_OFFSET = 2**31 - 1  # pagination past this is not meaningful, and SQL needs a bounded int
EVENT_STREAM_MAX_S = 3600.0

JOB_EXAMPLE = {
    "job_id": "job_0123456789abcdef",
    "status": "completed",
    "feature": "retopology",
    "created_at": "2024-01-01T00:00:00Z",
    "completed_at": "2024-01-01T00:00:05Z",
    "processing_time": 4.2,
    "progress": {"stage": "completed", "fraction": 1.0},
    "result": {
        "output_mesh_path": "/api/v1/system/jobs/job_0123456789abcdef/download",
        "thumbnail_path": "/api/v1/system/jobs/job_0123456789abcdef/thumbnail",
        "mesh_url": "http://localhost:7842/api/v1/system/jobs/job_0123456789abcdef/download",
        "thumbnail_url": "http://localhost:7842/api/v1/system/jobs/job_0123456789abcdef/thumbnail",
        "generation_info": {"model_used": "quadric_retopology", "thumbnail_generated": True},
    },
}


@health_router.get("/health")
async def health(ctx: Ctx) -> dict[str, Any]:
    """Basic health check."""
    return {
        "status": "healthy",
        "timestamp": utcnow(),
        "uptime": round(time.time() - ctx.started_at, 3),
    }


@router.get("/features")
async def features(ctx: Ctx) -> dict[str, Any]:
    """Features this deployment serves."""
    rows = [
        {
            "name": name,
            "model_count": len(ids),
            "models": ids,
            "default_model": ctx.catalogue.default_for(name),
        }
        for name, ids in ctx.catalogue.by_feature.items()
    ]
    return {"features": rows, "total_features": len(rows)}


@router.get("/models")
async def models(ctx: Ctx, _: Caller, feature: str | None = None) -> dict[str, Any]:
    """Models available, optionally for one feature."""
    by_feature = ctx.catalogue.by_feature
    if feature is not None:
        if feature not in ctx.catalogue.by_feature and feature not in FEATURES:
            raise NotFound(f"Unknown feature {feature}", {"features": sorted(FEATURES)})
        by_feature = {feature: by_feature.get(feature, [])}
    unavailable = ctx.catalogue.unavailable
    details = {
        mid: {
            "feature": spec.feature,
            "description": spec.description,
            "method": spec.method,
            "vram_mb": ctx.catalogue.vram_mb(mid),
            "approximate": spec.approximate,
            "status": "unavailable" if mid in unavailable else "deployed",
            "reason": unavailable.get(mid),
            "deployment": ctx.catalogue.configs[mid].deployment_name,
            "replicas": ctx.catalogue.configs[mid].num_replicas,
        }
        for ids in by_feature.values()
        for mid in ids
        for spec in [ctx.catalogue.specs[mid]]
    }
    offered = {name: [m for m in ids if m not in unavailable] for name, ids in by_feature.items()}
    return {
        "available_models": offered,
        "total_features": len(offered),
        "total_models": sum(len(v) for v in offered.values()),
        "models": details,
        "unavailable_models": {m: r for m, r in unavailable.items() if m in details},
    }


@router.get("/jobs/history")
async def jobs_history(
    ctx: Ctx,
    caller: Caller,
    request: Request,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    status: JobStatus | None = None,
    feature: str | None = Query(None, max_length=64, pattern=r"^[A-Za-z0-9_]+$"),
    start_date: str | None = Query(None, max_length=64, json_schema_extra=DATE_TIME),
    end_date: str | None = Query(None, max_length=64, json_schema_extra=DATE_TIME),
) -> dict[str, Any]:
    """Past jobs with filters and pagination."""
    start, end = parse_iso(start_date, "start_date"), parse_iso(end_date, "end_date")
    rows, total = await run_in_threadpool(
        lambda: job_db.list_jobs(
            ctx.engine,
            limit=limit,
            offset=offset,
            status=status.value if status else None,
            feature=feature,
            start_date=start,
            end_date=end,
            owner_id=scope_of(caller),
        )
    )
    where = links(ctx, request)
    return {
        "jobs": [history_row(j, where) for j in rows],
        "pagination": {
            "limit": limit,
            "offset": offset,
            "total": total,
            "has_more": offset + len(rows) < total,
        },
        "filters": {
            "status": status.value if status else None,
            "feature": feature,
            "start_date": start_date,
            "end_date": end_date,
        },
        "timestamp": time.time(),
    }


async def _job(ctx: Ctx, job_id: str) -> Job:
    return await run_in_threadpool(job_db.require_job, ctx.engine, job_id)


@router.get(
    "/jobs/{job_id}", responses={200: {"content": {"application/json": {"example": JOB_EXAMPLE}}}}
)
async def job_status(ctx: Ctx, job: OwnedJob, request: Request) -> dict[str, Any]:
    """Status of a job, with URLs of its files once completed."""
    queue = None
    if job.status == JobStatus.QUEUED.value:
        queue = await ctx.job_manager().queue_info(job.id)
    return present_job(job, links(ctx, request), queue)


@router.get("/jobs/{job_id}/events")
async def job_events(ctx: Ctx, owned: OwnedJob, request: Request) -> StreamingResponse:
    """Server-sent events with the job's status and progress until it finishes."""
    job_id = owned.id
    where = links(ctx, request)

    async def stream() -> Any:
        last = None
        deadline = time.monotonic() + EVENT_STREAM_MAX_S
        while time.monotonic() < deadline and not await request.is_disconnected():
            job = await _job(ctx, job_id)
            body = present_job(job, where)
            snapshot = (job.status, body["progress"]["stage"], body["progress"]["fraction"])
            if snapshot != last:
                last = snapshot
                yield f"event: status\ndata: {json.dumps(jsonable_encoder(body))}\n\n"
            if JobStatus(job.status).is_final:
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(ctx: Ctx, job: OwnedJob) -> dict[str, Any]:
    """Cancel a queued or processing job."""
    result = await ctx.job_manager().cancel(job.id)
    return {**result, "message": "Job cancelled"}


def _require_completed(job: Job) -> None:
    if job.status == JobStatus.FAILED.value:
        raise JobFailed(f"Job {job.id} failed: {job.error_message}", {"job_id": job.id})
    if job.status != JobStatus.COMPLETED.value:
        raise Conflict(
            f"Job {job.id} is {job.status}; its files exist once it completes",
            {"job_id": job.id, "status": job.status},
        )


def _completed_file(job: Job, which: str) -> dict[str, Any]:
    _require_completed(job)
    result = job.result or {}
    entry = primary_file(job) if which == "primary" else result.get("thumbnail")
    if entry is None:
        raise NotFound(
            f"Job {job.id} has no {'result' if which == 'primary' else which} file"
            + (" (deleted)" if result.get("result_deleted") else ""),
            {"job_id": job.id},
        )
    return entry


async def _send(
    ctx: Ctx, entry: dict[str, Any], fmt: DownloadFormat, filename: str | None, job_id: str
) -> Any:
    ext = entry["filename"].rsplit(".", 1)[-1]
    name = safe_filename(filename, ext) if filename else entry["filename"]
    try:
        if fmt == "base64":
            data = await run_in_threadpool(ctx.store.get_bytes, entry["key"])
            return {
                "job_id": job_id,
                "filename": name,
                "content_type": entry["content_type"],
                "file_size_bytes": len(data),
                "base64_data": base64.b64encode(data).decode(),
            }
        chunks = await run_in_threadpool(ctx.store.iter_chunks, entry["key"])
    except ObjectNotFound:
        raise NotFound("The file is no longer stored", {"job_id": job_id}) from None
    return StreamingResponse(
        chunks,
        media_type=entry["content_type"],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(entry["size"]),
        },
    )


@router.get("/jobs/{job_id}/download")
async def download_result(
    ctx: Ctx, job: OwnedJob, format: DownloadFormat = "file", filename: str | None = None
) -> Any:
    """Download the result file of a completed job."""
    return await _send(ctx, _completed_file(job, "primary"), format, filename, job.id)


@router.get("/jobs/{job_id}/thumbnail")
async def download_thumbnail(
    ctx: Ctx, job: OwnedJob, format: DownloadFormat = "file", filename: str | None = None
) -> Any:
    """Download the thumbnail of a completed job."""
    return await _send(ctx, _completed_file(job, "thumbnail"), format, filename, job.id)


@router.get("/jobs/{job_id}/files/{name}")
async def download_file(ctx: Ctx, job: OwnedJob, name: str, format: DownloadFormat = "file") -> Any:
    """Download any output file of a completed job by its name."""
    job_id = job.id
    _require_completed(job)
    files = (job.result or {}).get("files") or []
    entry = next((f for f in files if f["filename"] == name), None)
    if entry is None:
        raise NotFound(
            f"Job {job_id} has no file {name}", {"files": [f["filename"] for f in files]}
        )
    return await _send(ctx, entry, format, None, job_id)


@router.get("/jobs/{job_id}/info")
async def job_info(ctx: Ctx, job: OwnedJob, request: Request) -> dict[str, Any]:
    """Details of a job's result without downloading it."""
    job_id = job.id
    entry = primary_file(job)
    exists = entry is not None and await run_in_threadpool(ctx.store.exists, entry["key"])
    prefix = links(ctx, request).job_path(job_id)
    info = (job.result or {}).get("generation_info", {})
    return {
        "job_id": job_id,
        "status": job.status,
        "file_info": {
            "file_exists": exists,
            "file_size_mb": file_info(entry)["file_size_mb"] if entry else None,
            "file_format": entry["filename"].rsplit(".", 1)[-1] if entry else None,
            "content_type": entry["content_type"] if entry else None,
        },
        "generation_info": {
            "model_used": info.get("model_used", job.model_id),
            "processing_time": job.processing_time,
            **info,
        },
        "download_urls": {
            "direct_download": f"{prefix}/download",
            "base64_download": f"{prefix}/download?format=base64",
        },
    }


@router.delete("/jobs/{job_id}/result")
async def delete_result(ctx: Ctx, job: OwnedJob) -> dict[str, Any]:
    """Delete the result files of a completed job (admins: anyone's)."""
    job_id = job.id
    entry = _completed_file(job, "primary")
    files = (job.result or {}).get("files") or []
    thumb = (job.result or {}).get("thumbnail")
    freed = sum(f["size"] for f in files) + (thumb["size"] if thumb else 0)
    new_result = {**(job.result or {}), "files": [], "thumbnail": None, "result_deleted": True}
    await run_in_threadpool(job_db.set_result, ctx.engine, job_id=job_id, result=new_result)
    await run_in_threadpool(ctx.store.delete_prefix, f"jobs/{job_id}/outputs/")
    return {
        "job_id": job_id,
        "message": "Result file deleted successfully",
        "deleted": True,
        "freed_space_mb": round(freed / MB, 3),
        "deleted_file": entry["filename"],
    }


@router.get("/supported-formats")
async def supported_formats() -> dict[str, Any]:
    """Input and output formats."""
    return {
        "input_formats": {
            "text": ["string"],
            "image": list(IMAGE_IN),
            "mesh": list(MESH_IN),
            "base64": ["image/png", "image/jpeg", "model/gltf-binary"],
        },
        "output_formats": {
            "mesh": list(MESH_OUT),
            "texture": ["png", "jpg"],
            "download": ["file", "base64"],
        },
        "content_types": {
            "mesh": {
                "glb": "model/gltf-binary",
                "gltf": "model/gltf+json",
                "obj": "application/wavefront-obj",
                "ply": "application/x-ply",
                "stl": "model/stl",
                "fbx": "model/fbx",
            }
        },
    }
