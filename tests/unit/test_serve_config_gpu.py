"""serve_config.gpu.yaml is valid for Ray's own deploy schema and for our settings, and its
GPU fractions follow the rule stated in the file."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.runtime_env import RuntimeEnv
from ray.serve.schema import ServeDeploySchema

from deployments.registry import MODEL_CLASSES, model_class, model_spec
from meshforge.features import FEATURES
from meshforge.settings import ModelDeploymentConfig, Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "serve_config.gpu.yaml"
REFERENCE_CARD_MB = 24576

GPU_MODELS = {
    "trellis_text_to_raw_mesh",
    "trellis_text_to_textured_mesh",
    "trellis_text_mesh_painting",
    "trellis_image_to_raw_mesh",
    "trellis_image_to_textured_mesh",
    "trellis_image_mesh_painting",
    "holopart_part_completion",
    "partfield_mesh_segmentation",
    "unirig_auto_rig",
    "fastmesh_v1k_retopology",
    "fastmesh_v4k_retopology",
    "partuv_uv_unwrapping",
}
CPU_FALLBACKS = {
    "quadric_retopology",
    "instant_meshes_retopology",
    "spectral_mesh_segmentation",
    "xatlas_uv_unwrapping",
    "fairing_part_completion",
    "heat_auto_rig",
    "silhouette_image_to_raw_mesh",
    "silhouette_image_to_textured_mesh",
    "projection_image_mesh_painting",
    "catalogue_text_to_raw_mesh",
    "catalogue_text_to_textured_mesh",
    "catalogue_text_mesh_painting",
}


def gpu_fraction(vram_mb: int) -> float:
    """The rule of serve_config.gpu.yaml: VRAM over a 24 GiB card, rounded up to 0.05,
    at most 1.0 (integer arithmetic, so 12288 MiB is exactly 0.5)."""
    twentieths = -(-vram_mb * 20 // REFERENCE_CARD_MB)
    return min(1.0, twentieths / 20)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return data


@pytest.fixture(scope="module")
def settings(raw: dict[str, Any]) -> Settings:
    return Settings(**raw["applications"][0]["args"])


def by_deployment(settings: Settings) -> dict[str, list[ModelDeploymentConfig]]:
    groups: dict[str, list[ModelDeploymentConfig]] = {}
    for model in settings.models:
        groups.setdefault(model.deployment_name, []).append(model)
    return groups


def test_gpu_config_validates_against_rays_schema(raw: dict[str, Any]) -> None:
    schema = ServeDeploySchema.model_validate(raw)
    assert schema.http_options.port == 7842
    app = schema.applications[0]
    assert app.import_path == "app.serve_app:build_app"
    assert app.route_prefix == "/"


def test_gpu_config_args_parse_as_settings(raw: dict[str, Any], settings: Settings) -> None:
    args = raw["applications"][0]["args"]
    assert settings.storage_backend == "s3"
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
    credentials = settings.database_url.split("//", 1)[1].split("@", 1)[0]
    assert ":" not in credentials, "no password in the URL: libpq reads PGPASSWORD"
    assert "s3_access_key" not in args and "s3_secret_key" not in args, "secrets come from env"
    assert str(settings.weights_dir) == "/models/weights"


def test_every_model_id_is_registered(settings: Settings) -> None:
    ids = [m.model_id for m in settings.models]
    assert len(ids) == len(set(ids)), "a model id is listed twice"
    assert set(ids) == GPU_MODELS | CPU_FALLBACKS
    for model_id in ids:
        assert model_id in MODEL_CLASSES, model_id
        assert model_spec(model_id).feature in FEATURES


def test_gpu_classes_import_without_upstream_packages(settings: Settings) -> None:
    """Importing an adapter (and reading its spec) must not import its upstream package."""
    import sys

    for model_id in GPU_MODELS:
        cls = model_class(model_id)
        assert cls.spec.model_id == model_id
        assert cls.spec.vram_mb > 0, model_id
    for upstream in ("trellis", "holopart", "partfield", "partuv", "torch_scatter", "bpy"):
        assert upstream not in sys.modules, upstream


def test_options_are_constructor_keywords(settings: Settings) -> None:
    """The replica calls `cls(**options)` (plus `weights_root` when the class takes it):
    every option must be a parameter of __init__, and the GPU models must find their
    weights in the folders the worker images mount, their upstream code in the clone."""
    for model in settings.models:
        cls = model_class(model.model_id)
        params = inspect.signature(cls.__init__).parameters
        for key in model.options:
            assert key in params, f"{model.model_id}: unknown option {key!r}"
        if model.model_id not in GPU_MODELS:
            continue
        folders = [v for k, v in model.options.items() if k.endswith("_dir") and k != "repo_dir"]
        assert folders and all(str(v).startswith("/models/weights/") for v in folders)
        assert str(model.options["repo_dir"]).startswith("/opt/upstream/")
        factory: Any = cls  # an UpstreamModel: it takes weights_root
        instance = factory(weights_root=str(settings.weights_dir), **model.options)
        weights = str(instance.weights_path)
        assert weights in {str(v) for v in folders}, (model.model_id, weights)


def test_num_gpus_follows_the_declared_vram(settings: Settings) -> None:
    for name, entries in by_deployment(settings).items():
        peak = max(m.vram_mb or model_spec(m.model_id).vram_mb for m in entries)
        gpu = {m.model_id for m in entries} <= GPU_MODELS
        for m in entries:
            if gpu:
                assert m.num_gpus == gpu_fraction(peak), (name, m.model_id, peak, m.num_gpus)
            else:
                assert m.num_gpus == 0, m.model_id


def test_the_fraction_rule() -> None:
    assert gpu_fraction(4096) == 0.2
    assert gpu_fraction(12288) == 0.5
    assert gpu_fraction(12289) == 0.55
    assert gpu_fraction(24500) == 1.0
    assert gpu_fraction(40000) == 1.0


def test_deployment_groups_share_replica_settings(settings: Settings) -> None:
    """Only the group's first entry's replica settings apply: the others must not differ
    (a silent divergence would be a misleading config)."""
    groups = by_deployment(settings)
    assert {m.model_id for m in groups["trellis"]} == {
        m for m in GPU_MODELS if m.startswith("trellis_")
    }
    for name, entries in groups.items():
        first = entries[0]
        for m in entries[1:]:
            for field in ("num_replicas", "num_cpus", "num_gpus", "runtime_env", "options"):
                assert getattr(m, field) == getattr(first, field), (name, m.model_id, field)


def test_gpu_deployments_run_one_replica_in_their_image(settings: Settings) -> None:
    images: dict[str, str] = {}
    for model in settings.models:
        if model.model_id not in GPU_MODELS:
            assert not model.runtime_env, f"{model.model_id} runs in the default environment"
            continue
        assert model.num_replicas == 1, model.model_id
        assert model.max_concurrent_jobs == 1, model.model_id
        env = dict(RuntimeEnv(**model.runtime_env))  # Ray's own validation of the fields
        assert set(env) <= {"image_uri", "env_vars", "config"}
        assert env["env_vars"]["HF_HUB_OFFLINE"] == "1", model.model_id
        assert all(isinstance(v, str) for v in env["env_vars"].values())
        images[model.deployment_name] = env["image_uri"]
    # One image per upstream environment (the two FastMesh deployments share one).
    expected = {"trellis", "holopart", "partfield", "unirig", "fastmesh", "partuv"}
    assert {uri.rsplit("/", 1)[-1].split(":")[0] for uri in images.values()} == expected
    for name in expected:
        assert (ROOT / "cluster" / "images" / name / "Dockerfile").is_file(), name


def test_every_feature_has_exactly_one_default(settings: Settings) -> None:
    defaults: dict[str, list[str]] = {}
    for model in settings.models:
        if model.default:
            defaults.setdefault(model_spec(model.model_id).feature, []).append(model.model_id)
    assert set(defaults) == set(FEATURES), set(FEATURES) - set(defaults)
    assert all(len(v) == 1 for v in defaults.values()), defaults
    assert all(v[0] in GPU_MODELS for v in defaults.values()), defaults
    assert defaults["retopology"] == ["fastmesh_v1k_retopology"]
