"""What every route needs: settings, database engine, object store, model catalogue, and a
client for the job manager. Built once per gateway replica (or per plain-uvicorn process)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from app.catalogue import ModelCatalogue
from app.ratelimit import Limits
from meshforge.errors import MeshForgeError, ServiceUnavailable
from meshforge.settings import Settings
from persistence.db import make_engine, migrate
from persistence.storage import ObjectStore, make_store

log = logging.getLogger("meshforge.gateway")

JM_TIMEOUT_S = 15.0


class JobManagerClient:
    """Calls into the job-manager actor with timeouts; recreates it if it vanished."""

    def __init__(
        self, settings: Settings, deployments: dict[str, dict[str, Any]], app_name: str
    ) -> None:
        self.settings = settings
        self.deployments = deployments
        self.app_name = app_name
        self._handle: Any = None

    def _get(self) -> Any:
        if self._handle is None:
            from meshforge.runtime import ensure_job_manager

            self._handle = ensure_job_manager(self.settings, self.deployments, self.app_name)
        return self._handle

    async def _call(self, method: str, *args: Any, timeout: float = JM_TIMEOUT_S) -> Any:
        from ray.exceptions import RayTaskError

        try:
            ref = getattr(self._get(), method).remote(*args)
            return await asyncio.wait_for(ref, timeout=timeout)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, MeshForgeError):
                raise cause from None
            raise
        except TimeoutError as exc:
            raise ServiceUnavailable("The job manager did not answer in time") from exc
        except Exception:
            self._handle = None  # the actor died for good: recreate on the next call
            raise

    async def start(self) -> None:
        await self._call("configure", self.deployments, timeout=60.0)

    async def admit(self, model_id: str) -> None:
        """Refuse a job no GPU could ever run (INSUFFICIENT_VRAM); if the job manager is
        unreachable the job is queued and it checks again when it picks it up."""
        try:
            await self._call("admit", model_id, timeout=5.0)
        except MeshForgeError:
            raise
        except Exception as exc:
            log.info("admission check skipped: %r", exc)

    async def load(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("load", model_id)
        return result

    async def unload(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("unload", model_id)
        return result

    async def submit(self, job_id: str) -> dict[str, Any] | None:
        """Best effort: a queued row is picked up by the job manager on its next start."""
        try:
            result: dict[str, Any] = await self._call("submit", job_id)
            return result
        except Exception as exc:
            log.warning("job %s queued but not yet handed to the job manager: %r", job_id, exc)
            return None

    async def cancel(self, job_id: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self._call("cancel", job_id)
            return result
        except MeshForgeError:
            raise
        except Exception as exc:
            raise ServiceUnavailable("The job manager is not reachable; try again") from exc

    async def status(self) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call("status", timeout=5.0)
            return result
        except Exception as exc:
            log.info("job manager status unavailable: %r", exc)
            return None

    async def queue_info(self, job_id: str) -> dict[str, Any]:
        """Queue position and waiting reason of a queued job (empty if unknown)."""
        try:
            result: dict[str, Any] = await self._call("queue_info", job_id, timeout=2.0)
            return result
        except Exception:
            return {}

    async def keepalive(self) -> None:
        try:
            await self._call("ping", timeout=10.0)
        except Exception as exc:
            log.warning("job manager ping failed: %r", exc)


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    store: ObjectStore
    catalogue: ModelCatalogue
    jobs: JobManagerClient | None
    started_at: float = field(default_factory=time.time)
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        self.limits = Limits.from_settings(self.settings)

    @classmethod
    def build(cls, settings: Settings, app_name: str, with_job_manager: bool = True) -> AppContext:
        url = settings.resolved_database_url()
        migrate(url)
        catalogue = ModelCatalogue(settings.models, allow_fallback=settings.model_fallback)
        jobs = (
            JobManagerClient(settings, catalogue.deployments(), app_name)
            if with_job_manager
            else None
        )
        return cls(settings, make_engine(url), make_store(settings), catalogue, jobs)

    def job_manager(self) -> JobManagerClient:
        if self.jobs is None:
            raise ServiceUnavailable("This process runs without a job manager")
        return self.jobs
