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


def test_simulated_gpu_config_validates_and_builds() -> None:
    from app.serve_app import deployment_groups

    raw = yaml.safe_load((ROOT / "serve_config.simulated_gpu.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    settings = Settings(**schema.applications[0].args)
    assert settings.gpu_inventory == "2x24576"
    groups = deployment_groups(settings)
    gpu = {name for name, cfg in groups.items() if cfg.num_gpus > 0}
    assert gpu == {f"gpu_sim_{s}_mesh_segmentation" for s in ("large", "medium", "small", "huge")}
    for name in gpu:
        assert model_spec(name).vram_mb > 0 and name in MODEL_CLASSES
    # large + medium share a GPU (0.5 + 0.5), small fits beside neither (0.6).
    fractions = {name: groups[name].num_gpus for name in gpu}
    assert (
        fractions["gpu_sim_large_mesh_segmentation"] + fractions["gpu_sim_medium_mesh_segmentation"]
        <= 1.0
    )
    assert fractions["gpu_sim_small_mesh_segmentation"] + 0.5 > 1.0
