"""The scheduler's state as plain data, for `/api/v1/system/scheduler-status`.

Kept apart from the policy so the route's shape can change without touching decisions.
Everything is JSON-ready: strings, ints, floats, lists and dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduling.ledger import GpuLedger, Replica

if TYPE_CHECKING:
    from scheduling.policy import Scheduler


def _replica(replica: Replica, now: float) -> dict[str, Any]:
    return {
        "model_id": replica.model_id,
        "state": replica.state.value,
        "vram_mib": replica.vram.mib,
        "in_flight": replica.in_flight,
        "idle_s": round(now - replica.last_used, 1),
        "loaded_s_ago": None if replica.loaded_at is None else round(now - replica.loaded_at, 1),
    }


def _gpu(gpu: GpuLedger, now: float) -> dict[str, Any]:
    return {
        "gpu": str(gpu.ref),
        "node_id": gpu.ref.node_id,
        "index": gpu.ref.index,
        "total_mib": gpu.info.total_mib,
        "margin_mib": gpu.margin.mib,
        "used_by_others_mib": gpu.info.used_by_others_mib,
        "reported_free_mib": gpu.info.free_mib,
        "used_mib": gpu.resident.mib,
        "reserved_mib": gpu.reserved.mib,
        "free_mib": gpu.load_room.mib,
        "overcommit_mib": gpu.overcommit.mib,
        "in_flight": gpu.in_flight,
        "models": [_replica(r, now) for r in gpu.replicas()],
    }


def snapshot(scheduler: Scheduler, now: float) -> dict[str, Any]:
    """Per GPU the ledger, per model its replicas and queue, and the counters."""
    models: dict[str, Any] = {}
    for model_id, profile in sorted(scheduler.profiles.items()):
        reason = None
        if scheduler.queues.length(model_id):
            reason = scheduler.wait_reason(scheduler.queues.jobs(model_id)[0].job_id)
        models[model_id] = {
            "vram_mib": profile.vram.mib,
            "fits_anywhere": scheduler.fits_anywhere(profile),
            "replicas": [
                {"gpu": str(r.gpu), "state": r.state.value, "in_flight": r.in_flight}
                for r in scheduler.ledger.replicas(model_id)
            ],
            "queued": scheduler.queues.length(model_id),
            "in_flight": scheduler.in_flight(model_id),
            "waiting_reason": reason.value if reason else None,
        }
    counters = {k: 0 for k in ("dispatches", "loads", "evictions", "unloads", "load_failures")}
    counters.update(scheduler.counters)
    return {
        "gpus": [_gpu(g, now) for g in scheduler.ledger],
        "models": models,
        "queued_jobs": len(scheduler.queues),
        "running_jobs": scheduler.in_flight(),
        "counters": counters,
    }
