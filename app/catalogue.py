"""Which models this application serves, per feature, and how a request picks one."""

from __future__ import annotations

from dataclasses import dataclass

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

    def feature(self, name: str) -> Feature:
        return FEATURES[name]

    def default_for(self, feature: str) -> str | None:
        ids = self.by_feature.get(feature, [])
        marked = [m for m in ids if self.configs[m].default]
        return (marked or ids)[0] if ids else None

    def choose(self, feature: str, preference: str | None) -> Choice:
        """The model for a request: its preference if deployed, else the feature default
        when the preference is a spec model of the feature (fallback), else an error."""
        served = self.by_feature.get(feature, [])
        if preference and preference in served:
            return Choice(preference, self.specs[preference])
        default = self.default_for(feature)
        known = FEATURES[feature].known_models
        if preference and (preference not in known or not self.allow_fallback):
            raise ModelNotAvailable(
                f"Model {preference} is not available for {feature}",
                {"feature": feature, "requested_model": preference, "available_models": served},
            )
        if default is None:
            raise ModelNotAvailable(
                f"No model serving {feature} is deployed",
                {"feature": feature, "requested_model": preference, "available_models": []},
            )
        return Choice(default, self.specs[default], fallback_from=preference)

    def capacity(self) -> dict[str, int]:
        return {mid: c.num_replicas * c.max_concurrent_jobs for mid, c in self.configs.items()}
