from __future__ import annotations

import pytest

from app.catalogue import ModelCatalogue
from meshforge.errors import ModelNotAvailable
from meshforge.settings import ModelDeploymentConfig

MODELS = [
    ModelDeploymentConfig(model_id="quadric_retopology", num_replicas=2, max_concurrent_jobs=3),
    ModelDeploymentConfig(model_id="spectral_mesh_segmentation"),
]


def test_default_and_explicit_choice() -> None:
    cat = ModelCatalogue(MODELS)
    assert cat.choose("retopology", None).model_id == "quadric_retopology"
    assert cat.choose("retopology", "quadric_retopology").fallback_from is None
    table = cat.deployments()
    assert table["quadric_retopology"]["max_concurrency"] == 6
    assert table["spectral_mesh_segmentation"] == {
        "models": ["spectral_mesh_segmentation"],
        "vram_mb": 0,
        "load_time_s": table["spectral_mesh_segmentation"]["load_time_s"],
        "max_concurrency": 1,
    }


def test_shared_deployment_is_one_row_with_the_largest_vram() -> None:
    cat = ModelCatalogue(
        [
            ModelDeploymentConfig(
                model_id="spectral_mesh_segmentation", deployment="shared", vram_mb=4000
            ),
            ModelDeploymentConfig(
                model_id="sleep_mesh_segmentation", deployment="shared", vram_mb=9000
            ),
        ]
    )
    row = cat.deployments()["shared"]
    assert row["models"] == ["spectral_mesh_segmentation", "sleep_mesh_segmentation"]
    assert row["vram_mb"] == 9000


def test_unavailable_model_is_not_offered_and_says_why() -> None:
    cat = ModelCatalogue(MODELS + [ModelDeploymentConfig(model_id="sleep_mesh_segmentation")])
    cat.unavailable = {"spectral_mesh_segmentation": "weights folder missing"}
    assert cat.offered("mesh_segmentation") == ["sleep_mesh_segmentation"]
    assert cat.choose("mesh_segmentation", None).model_id == "sleep_mesh_segmentation"
    fallback = cat.choose("mesh_segmentation", "spectral_mesh_segmentation")
    assert fallback.model_id == "sleep_mesh_segmentation"
    with pytest.raises(ModelNotAvailable) as err:
        ModelCatalogue(MODELS, allow_fallback=False).choose("mesh_segmentation", "nope")
    assert err.value.code == "MODEL_NOT_AVAILABLE"


def test_spec_model_not_deployed_falls_back_and_says_so() -> None:
    choice = ModelCatalogue(MODELS).choose("retopology", "fastmesh_v4k_retopology")
    assert choice.model_id == "quadric_retopology"
    assert choice.fallback_from == "fastmesh_v4k_retopology"


def test_fallback_can_be_switched_off() -> None:
    with pytest.raises(ModelNotAvailable) as err:
        ModelCatalogue(MODELS, allow_fallback=False).choose("retopology", "fastmesh_v1k_retopology")
    assert err.value.detail["available_models"] == ["quadric_retopology"]


def test_unknown_or_foreign_model_is_refused() -> None:
    cat = ModelCatalogue(MODELS)
    for pref in ("nope", "partfield_mesh_segmentation", "spectral_mesh_segmentation"):
        with pytest.raises(ModelNotAvailable):
            cat.choose("retopology", pref)


def test_feature_without_models() -> None:
    with pytest.raises(ModelNotAvailable) as err:
        ModelCatalogue(MODELS).choose("auto_rig", None)
    assert err.value.code == "MODEL_NOT_AVAILABLE" and err.value.detail["available_models"] == []


def test_zero_replicas_means_not_served() -> None:
    cat = ModelCatalogue([ModelDeploymentConfig(model_id="quadric_retopology", num_replicas=0)])
    assert cat.by_feature == {}
