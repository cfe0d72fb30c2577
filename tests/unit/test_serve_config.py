"""serve_config.yaml is valid for Ray's own deploy schema and for our settings."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from deployments.registry import MODEL_CLASSES, model_spec
from meshforge.features import FEATURES
from meshforge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_validates_against_rays_schema() -> None:
    raw = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    assert schema.http_options.port == 7842
    app = schema.applications[0]
    assert app.import_path == "app.serve_app:build_app"
    settings = Settings(**app.args)
    for model in settings.models:
        assert model.model_id in MODEL_CLASSES
        assert model_spec(model.model_id).feature in FEATURES


def test_default_config_has_one_default_model_per_feature() -> None:
    raw = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    settings = Settings(**raw["applications"][0]["args"])
    defaults: dict[str, list[str]] = {}
    for model in settings.models:
        if model.default:
            defaults.setdefault(model_spec(model.model_id).feature, []).append(model.model_id)
    assert all(len(v) == 1 for v in defaults.values()), defaults
