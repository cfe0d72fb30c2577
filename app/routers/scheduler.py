"""Status routes: host and GPU status, the scheduler's view, loading and unloading models."""

from __future__ import annotations

from typing import Any

import psutil
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.deps import AdminOnly, Ctx
from app.jobs import MB
from meshforge.errors import NotFound
from meshforge.gpus import nvml_readings
from persistence import jobs as job_db
from persistence.models import utcnow

router = APIRouter(prefix="/api/v1/system", tags=["System"])


def _gpu_inventory() -> list[dict[str, Any]]:
    """This host's GPUs through NVML (`meshforge.gpus`); an empty list without them."""
    return [
        {
            "id": row["index"],
            "name": row["name"],
            "memory_total": row["total_bytes"] // MB,
            "memory_used": row["used_bytes"] // MB,
            "memory_free": row["free_bytes"] // MB,
            "memory_utilization": round(row["used_bytes"] / max(row["total_bytes"], 1), 3),
            "gpu_utilization": None if row["utilization"] is None else row["utilization"] / 100,
            "temperature": row["temperature"],
        }
        for row in nvml_readings()
    ]


def _host_status(ctx: Ctx) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    disk = psutil.disk_usage(str(ctx.settings.data_dir.resolve().anchor or "/"))
    return {
        "cpu_usage": psutil.cpu_percent(interval=None),
        "memory": {
            "total": mem.total,
            "available": mem.available,
            "used": mem.used,
            "percent": mem.percent,
        },
        "disk": {
            "total": disk.total,
            "free": disk.free,
            "used": disk.used,
            "percent": disk.percent,
        },
    }


@router.get("/status")
async def system_status(ctx: Ctx, _: AdminOnly) -> dict[str, Any]:
    """System status with GPU, model and queue information."""
    host, gpus = await run_in_threadpool(lambda: (_host_status(ctx), _gpu_inventory()))
    counts = await run_in_threadpool(job_db.count_by_status, ctx.engine)
    jm = await ctx.job_manager().status()
    specs = ctx.catalogue.specs
    ledger = (jm or {}).get("scheduler", {})
    live = (jm or {}).get("models", {})
    return {
        "timestamp": utcnow(),
        "system": host,
        "gpu": gpus,
        "models": {
            "loaded": sum(1 for m in specs if live.get(m, {}).get("loaded", True)),
            "available": len(specs) - len(ctx.catalogue.unavailable),
            "total_vram_used": sum(g["used_mib"] for g in ledger.get("gpus", [])),
        },
        "scheduler": ledger,
        "queue": {
            "pending_jobs": counts["queued"],
            "processing_jobs": counts["processing"],
            "completed_jobs": counts["completed"],
            "failed_jobs": counts["failed"],
            "cancelled_jobs": counts["cancelled"],
        },
        "job_manager": jm,
    }


@router.get("/scheduler-status")
async def scheduler_status(ctx: Ctx) -> dict[str, Any]:
    """Scheduler and model status: per GPU the VRAM ledger (resident models, MiB used,
    reserved and free), per model its replicas, queue and state, and the counters."""
    jm = await ctx.job_manager().status()
    counts = await run_in_threadpool(job_db.count_by_status, ctx.engine)
    ledger = (jm or {}).get("scheduler", {})
    live_models = (jm or {}).get("models", {})
    models = {}
    for mid, spec in ctx.catalogue.specs.items():
        live = live_models.get(mid, {})
        models[mid] = {
            "status": _model_state(ctx, mid, live, jm is not None),
            "vram_usage": ctx.catalogue.vram_mb(mid),
            "feature": spec.feature,
            "deployment": ctx.catalogue.configs[mid].deployment_name,
            "replicas": _replicas(ctx, mid, live),
            "placed_on": live.get("placed_on"),
            "queued_jobs": live.get("queued", 0),
            "running_jobs": live.get("running", 0),
            "waiting_reason": live.get("waiting_reason"),
            "reason": ctx.catalogue.unavailable.get(mid),
        }
    gpus = ledger.get("gpus", [])
    return {
        "scheduler": {
            "running": jm is not None,
            "queue_status": {
                "queued_jobs": counts["queued"],
                "processing_jobs": counts["processing"],
                "completed_jobs": counts["completed"],
            },
            "gpu_status": [
                {
                    "id": g["index"],
                    "node_id": g["node_id"],
                    "memory_used": g["used_mib"],
                    "memory_reserved": g["reserved_mib"],
                    "memory_free": g["free_mib"],
                    "memory_total": g["total_mib"],
                    "memory_used_by_others": g["used_by_others_mib"],
                    "margin": g["margin_mib"],
                    "running_jobs": g["in_flight"],
                    "models": g["models"],
                }
                for g in gpus
            ],
            "models": models,
            "counters": (jm or {}).get("counters", {}),
        },
        "adapters_registered": len(models),
        "active_jobs": counts["processing"],
        "queued_jobs": counts["queued"],
        "completed_jobs": counts["completed"],
    }


def _replicas(ctx: Ctx, model_id: str, live: dict[str, Any]) -> list[dict[str, Any]]:
    """A GPU model's replicas from the ledger; a CPU model's configured replicas."""
    if ctx.catalogue.vram_mb(model_id) > 0:
        return list(live.get("replicas", []))
    count = ctx.catalogue.configs[model_id].num_replicas
    return [{"gpu": None, "state": "ready"} for _ in range(count)]


def _model_state(ctx: Ctx, model_id: str, live: dict[str, Any], jm_up: bool) -> str:
    """loaded | loading | unloading | unloaded (a GPU model without weights in memory) |
    unavailable (its replica cannot load it) | unknown (the job manager is not answering)."""
    if model_id in ctx.catalogue.unavailable:
        return "unavailable"
    if not jm_up:
        return "unknown"
    if ctx.catalogue.vram_mb(model_id) == 0:
        return "loaded"
    states = {r.get("state") for r in live.get("replicas", [])}
    for state in ("ready", "loading", "unloading"):
        if state in states:
            return "loaded" if state == "ready" else state
    return "unloaded"


@router.post("/models/{model_id}/load")
async def load_model(ctx: Ctx, _: AdminOnly, model_id: str) -> dict[str, Any]:
    """Admin: load a GPU model's weights now, where its replica sits, if the VRAM ledger
    has room (nothing is evicted); 409 if it has not."""
    _require_deployed(ctx, model_id)
    return await ctx.job_manager().load(model_id)


@router.post("/models/{model_id}/unload")
async def unload_model(ctx: Ctx, _: AdminOnly, model_id: str) -> dict[str, Any]:
    """Admin: unload a GPU model's weights now; 409 while it has jobs in flight."""
    _require_deployed(ctx, model_id)
    return await ctx.job_manager().unload(model_id)


def _require_deployed(ctx: Ctx, model_id: str) -> None:
    if model_id not in ctx.catalogue.configs:
        raise NotFound(
            f"Model {model_id} is not deployed",
            {"model_id": model_id, "deployed": sorted(ctx.catalogue.configs)},
        )
