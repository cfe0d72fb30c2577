"""The Ray Serve application: the Gateway ingress and one deployment per model.

`build_app(args)` is the application builder named in `serve_config.yaml`; its arguments
are `Settings` fields (the config file wins over `MESHFORGE_*` variables).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve import Application

from app.context import AppContext
from app.deps import set_process_context
from app.main import create_app
from deployments.replica import ModelReplica
from meshforge.settings import Settings

log = logging.getLogger("meshforge.gateway")

fastapi_app = create_app()


@serve.deployment(
    name="Gateway",
    ray_actor_options={"num_cpus": 0.2},
    max_ongoing_requests=200,
    health_check_period_s=10,
)
@serve.ingress(fastapi_app)
class Gateway:
    """HTTP ingress: validates, stores inputs, creates jobs; reads go straight to DB/storage."""

    def __init__(self, settings: dict[str, Any], *model_handles: Any) -> None:
        logging.basicConfig(level=logging.INFO)
        conf = Settings(**settings)
        self.ctx = AppContext.build(conf, conf.app_name)
        set_process_context(self.ctx)

    async def check_health(self) -> None:
        self.ctx.store.check()


def model_deployment(model_id: str, cfg: Any, settings: dict[str, Any]) -> Application:
    options: dict[str, Any] = {"num_cpus": cfg.num_cpus}
    if cfg.num_gpus:
        options["num_gpus"] = cfg.num_gpus
    return (
        serve.deployment(ModelReplica)  # type: ignore[attr-defined]
        .options(
            name=model_id,
            num_replicas=cfg.num_replicas,
            ray_actor_options=options,
            max_ongoing_requests=max(cfg.max_concurrent_jobs * 2, 2),
            health_check_period_s=10,
            graceful_shutdown_timeout_s=30,
        )
        .bind(model_id, settings)
    )


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for `serve run` / `serve deploy`."""
    settings = Settings(**(args or {}))
    as_dict = settings.model_dump(mode="json")
    # Model deployments are bound as children so Serve deploys them with the gateway.
    children = [
        model_deployment(m.model_id, m, as_dict) for m in settings.models if m.num_replicas > 0
    ]
    return Gateway.bind(as_dict, *children)  # type: ignore[attr-defined]
