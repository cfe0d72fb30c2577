"""Which models this application serves, per feature, and how a request picks one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployments.base import ModelSpec
from deployments.registry import model_spec
from meshforge.errors import ModelNotAvailable
from meshforge.features import FEATURES, Feature
from meshforge.settings import ModelDeploymentConfig


@dataclass(frozen=True)
class Choice:
    model_id: str
    spec: ModelSpec
    fallback_from: str | None = None


class ModelCatalogue:
    def __init__(self, models: list[ModelDeploymentConfig], allow_fallback: bool = True) -> None:
        self.configs = {m.model_id: m for m in models if m.num_replicas > 0}
        self.specs = {mid: model_spec(mid) for mid in self.configs}
        self.allow_fallback = allow_fallback
        self.by_feature: dict[str, list[str]] = {}
        for mid, spec in self.specs.items():
            self.by_feature.setdefault(spec.feature, []).append(mid)
        self.unavailable: dict[str, str] = {}
        """Deployed models whose replica cannot load them (package or weights missing), with
        the replica's reason; refreshed from the job manager. They are not offered."""

    def vram_mb(self, model_id: str) -> int:
        """VRAM of one replica: the deployment's override, else the model's spec."""
        override = self.configs[model_id].vram_mb
        return self.specs[model_id].vram_mb if override is None else override

    def deployments(self) -> dict[str, dict[str, Any]]:
        """The table the job manager schedules with: per Serve deployment its models, the
        VRAM one replica needs (the most any of its models needs) and its job slots."""
        table: dict[str, dict[str, Any]] = {}
        for mid, cfg in self.configs.items():
            name = cfg.deployment_name
            row = table.setdefault(
                name, {"models": [], "vram_mb": 0, "load_time_s": 0.0, "max_concurrency": 0}
            )
            row["models"].append(mid)
            row["vram_mb"] = max(row["vram_mb"], self.vram_mb(mid))
            row["load_time_s"] = max(row["load_time_s"], self.specs[mid].load_time_s)
            if len(row["models"]) == 1:
                slots = cfg.max_concurrent_jobs
                row["max_concurrency"] = slots * (cfg.num_replicas if not cfg.num_gpus else 1)
        return table

    def offered(self, feature: str) -> list[str]:
        """Models of a feature that can take jobs now."""
        return [m for m in self.by_feature.get(feature, []) if m not in self.unavailable]

    def feature(self, name: str) -> Feature:
        return FEATURES[name]

    def default_for(self, feature: str) -> str | None:
        ids = self.offered(feature)
        marked = [m for m in ids if self.configs[m].default]
        return (marked or ids)[0] if ids else None

    def choose(self, feature: str, preference: str | None) -> Choice:
        """The model for a request: its preference if deployed (and loadable), else the
        feature default when the preference is a spec model of the feature or a deployed
        model that cannot load (fallback), else an error."""
        served = self.offered(feature)
        if preference and preference in served:
            return Choice(preference, self.specs[preference])
        default = self.default_for(feature)
        known = set(FEATURES[feature].known_models) | set(self.by_feature.get(feature, []))
        if preference and (preference not in known or not self.allow_fallback):
            detail: dict[str, Any] = {
                "feature": feature,
                "requested_model": preference,
                "available_models": served,
            }
            if preference in self.unavailable:
                detail["reason"] = self.unavailable[preference]
            raise ModelNotAvailable(f"Model {preference} is not available for {feature}", detail)
        if default is None:
            raise ModelNotAvailable(
                f"No model serving {feature} is deployed",
                {"feature": feature, "requested_model": preference, "available_models": []},
            )
        return Choice(default, self.specs[default], fallback_from=preference)
