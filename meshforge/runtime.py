"""The Ray boundary: the job-manager actor shell and how other processes reach it.

Everything Ray-specific about jobs lives here, so the rest (`JobManagerCore`, the routers,
the models) can be tested without a cluster.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from ray import serve

from meshforge.job_manager import JobManagerCore
from meshforge.settings import Settings

log = logging.getLogger("meshforge.runtime")


def _serve_dispatcher(app_name: str) -> Any:
    handles: dict[str, Any] = {}

    def dispatch(model_id: str, payload: dict[str, Any]) -> Any:
        if model_id not in handles:
            handles[model_id] = serve.get_deployment_handle(model_id, app_name=app_name)
        return handles[model_id].run.remote(payload)

    return dispatch


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000)  # type: ignore[call-overload]
class JobManagerActor:
    """Named, detached; Ray restarts it on failure and it rebuilds its state from the DB."""

    def __init__(self, settings: dict[str, Any], capacity: dict[str, int], app_name: str) -> None:
        logging.basicConfig(level=logging.INFO)
        self.core = JobManagerCore(Settings(**settings), _serve_dispatcher(app_name), capacity)

    async def ping(self) -> bool:
        self.core.ensure_started()
        return True

    async def configure(self, capacity: dict[str, int]) -> None:
        self.core.capacity = dict(capacity)
        self.core.ensure_started()

    async def submit(self, job_id: str) -> dict[str, Any]:
        return self.core.submit(job_id)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return self.core.cancel(job_id)

    async def heartbeat(self, job_id: str, attempt: int, stage: str, fraction: float) -> bool:
        return self.core.heartbeat(job_id, attempt, stage, fraction)

    async def finish(self, job_id: str, attempt: int, outcome: dict[str, Any]) -> bool:
        return self.core.finish(job_id, attempt, outcome)

    async def status(self) -> dict[str, Any]:
        return self.core.status()

    async def queue_position(self, job_id: str) -> int | None:
        return self.core.queue_position(job_id)


def job_manager(settings: Settings) -> Any:
    """Handle of the running job manager; raises ValueError if there is none."""
    return ray.get_actor(settings.job_manager_name, namespace=settings.ray_namespace)


def ensure_job_manager(settings: Settings, capacity: dict[str, int], app_name: str) -> Any:
    """Get or create the job manager (the gateway calls this on start and when it vanished)."""
    return JobManagerActor.options(  # type: ignore[attr-defined]
        name=settings.job_manager_name,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(settings.model_dump(mode="json"), capacity, app_name)


async def call(ref: Any, timeout: float) -> Any:
    """Await an actor call with a timeout (an unreachable actor must never hang a request)."""
    return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout=timeout)
