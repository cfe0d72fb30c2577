"""The Ray boundary: the job-manager actor shell and how other processes reach it.

Everything Ray-specific about jobs lives here, so the rest (`JobManagerCore`, the routers,
the models) can be tested without a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray
from ray import serve

from meshforge.gpus import from_nvml_row
from meshforge.job_manager import JobManagerCore
from meshforge.settings import Settings
from scheduling import GpuInfo, parse_simulated_inventory

log = logging.getLogger("meshforge.runtime")


class _Handles:
    """Serve handles of the model deployments, created on first use."""

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self._handles: dict[str, Any] = {}

    def get(self, deployment: str) -> Any:
        if deployment not in self._handles:
            self._handles[deployment] = serve.get_deployment_handle(
                deployment, app_name=self.app_name
            )
        return self._handles[deployment]

    def dispatch(self, deployment: str, payload: dict[str, Any]) -> Any:
        return self.get(deployment).run.remote(payload)

    async def load(self, deployment: str) -> Any:
        return await self.get(deployment).load_model.remote()

    async def unload(self, deployment: str) -> Any:
        return await self.get(deployment).unload_model.remote()


@ray.remote(num_cpus=0)
def _probe_node(node_id: str) -> list[dict[str, Any]]:
    """NVML readings of every GPU of the node this task runs on (see `probe_gpus`)."""
    from meshforge.gpus import nvml_readings

    return nvml_readings()


class Inventory:
    """Keeps the job manager's GPU readings current: NVML on every node with GPUs (one
    pinned task per node), or the configured simulated GPUs on nodes without NVML, which
    Ray's logical GPUs (`ray start --num-gpus=N`) back."""

    def __init__(self, core: JobManagerCore) -> None:
        self.core = core
        self.settings = core.settings
        self.nodes: set[str] = set()

    async def refresh(self) -> None:
        alive = {
            n["NodeID"]: n
            for n in await asyncio.to_thread(ray.nodes)
            if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0
        }
        for gone in self.nodes - set(alive):
            self.core.remove_node(gone)
        self.nodes = set(alive)
        for node_id, node in alive.items():
            for reading in await self._read(node_id, int(node["Resources"]["GPU"])):
                self.core.update_gpu(reading)

    async def _read(self, node_id: str, logical: int) -> list[GpuInfo]:
        simulated = self.settings.gpu_inventory
        if not simulated:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
            rows = await _probe_node.options(scheduling_strategy=strategy).remote(node_id)  # type: ignore[attr-defined]
            if rows:
                ours = self.core.replica_pids(node_id)
                return [from_nvml_row(node_id, row, ours) for row in rows]
        if simulated:
            gpus = list(parse_simulated_inventory(simulated, default_node=node_id))
            return [g for g in gpus if g.index < logical]
        return []

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # a node in flux: keep the last readings
                log.warning("GPU inventory refresh failed: %r", exc)
            await asyncio.sleep(self.settings.gpu_poll_interval_s)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000)  # type: ignore[call-overload]
class JobManagerActor:
    """Named, detached; Ray restarts it on failure and it rebuilds its state from the DB
    (jobs) and from the replicas' reports (the VRAM ledger)."""

    def __init__(
        self, settings: dict[str, Any], deployments: dict[str, Any], app_name: str
    ) -> None:
        logging.basicConfig(level=logging.INFO)
        handles = _Handles(app_name)
        self.core = JobManagerCore(Settings(**settings), handles.dispatch, deployments, handles)
        self.inventory = Inventory(self.core)
        self._inventory_task: asyncio.Task[None] | None = None

    def _started(self) -> JobManagerCore:
        self.core.ensure_started()
        if self._inventory_task is None or self._inventory_task.done():
            self._inventory_task = asyncio.get_running_loop().create_task(self.inventory.run())
        return self.core

    async def ping(self) -> bool:
        self._started()
        return True

    async def configure(self, deployments: dict[str, Any]) -> None:
        self._started().configure(deployments)

    async def admit(self, model_id: str) -> None:
        self._started().admit(model_id)

    async def submit(self, job_id: str) -> dict[str, Any]:
        return self._started().submit(job_id)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return self._started().cancel(job_id)

    async def load(self, model_id: str) -> dict[str, Any]:
        return self._started().load(model_id)

    async def unload(self, model_id: str) -> dict[str, Any]:
        return self._started().unload(model_id)

    async def heartbeat(self, job_id: str, attempt: int, stage: str, fraction: float) -> bool:
        return self._started().heartbeat(job_id, attempt, stage, fraction)

    async def replica_report(self, deployment: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._started().replica_report(deployment, **report)

    async def finish(self, job_id: str, attempt: int, outcome: dict[str, Any]) -> bool:
        return self._started().finish(job_id, attempt, outcome)

    async def status(self) -> dict[str, Any]:
        return self._started().status()

    async def refresh_inventory(self) -> dict[str, Any]:
        self._started()
        await self.inventory.refresh()
        return self.core.scheduler.snapshot(time.monotonic())

    async def queue_info(self, job_id: str) -> dict[str, Any]:
        return self._started().queue_info(job_id)


def job_manager(settings: Settings) -> Any:
    """Handle of the running job manager; raises ValueError if there is none."""
    return ray.get_actor(settings.job_manager_name, namespace=settings.ray_namespace)


def ensure_job_manager(settings: Settings, deployments: dict[str, Any], app_name: str) -> Any:
    """Get or create the job manager (the gateway calls this on start and when it vanished)."""
    return JobManagerActor.options(  # type: ignore[attr-defined]
        name=settings.job_manager_name,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
    ).remote(settings.model_dump(mode="json"), deployments, app_name)


async def call(ref: Any, timeout: float) -> Any:
    """Await an actor call with a timeout (an unreachable actor must never hang a request)."""
    return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout=timeout)
