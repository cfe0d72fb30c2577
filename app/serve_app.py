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
from meshforge.settings import ModelDeploymentConfig, Settings

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


def model_deployment(
    name: str, cfg: ModelDeploymentConfig, settings: dict[str, Any]
) -> Application:
    """The Serve deployment `name`, with the replica settings of its first model entry."""
    options: dict[str, Any] = {"num_cpus": cfg.num_cpus}
    if cfg.num_gpus:
        options["num_gpus"] = cfg.num_gpus
    if cfg.runtime_env:
        options["runtime_env"] = cfg.runtime_env
    return (
        serve.deployment(ModelReplica)  # type: ignore[attr-defined]
        .options(
            name=name,
            num_replicas=cfg.num_replicas,
            ray_actor_options=options,
            max_ongoing_requests=max(cfg.max_concurrent_jobs * 2, 4),
            health_check_period_s=10,
            graceful_shutdown_timeout_s=30,
        )
        .bind(name, settings)
    )


def deployment_groups(settings: Settings) -> dict[str, ModelDeploymentConfig]:
    """One entry per Serve deployment: the first model entry naming it. A GPU deployment
    runs one replica (Ray places it; the scheduler loads and unloads its weights), so
    asking for more is a configuration error rather than a silent change."""
    groups: dict[str, ModelDeploymentConfig] = {}
    for cfg in settings.models:
        if cfg.num_replicas > 0:
            groups.setdefault(cfg.deployment_name, cfg)
    for name, cfg in groups.items():
        if cfg.num_gpus > 0 and cfg.num_replicas > 1:
            raise ValueError(
                f"deployment {name!r}: a GPU deployment runs one replica (num_replicas: 1)"
            )
    return groups


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for `serve run` / `serve deploy`."""
    settings = Settings(**(args or {}))
    as_dict = settings.model_dump(mode="json")
    # Model deployments are bound as children so Serve deploys them with the gateway.
    children = [
        model_deployment(name, cfg, as_dict) for name, cfg in deployment_groups(settings).items()
    ]
    return Gateway.bind(as_dict, *children)  # type: ignore[attr-defined]
