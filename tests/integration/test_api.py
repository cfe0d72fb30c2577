"""The API through HTTP on the real Serve application: routes, shapes, error envelope."""

from __future__ import annotations

from typing import Any

import pytest

from meshforge.features import FEATURES
from tests.integration.conftest import MODELS, Service


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "message", "detail"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body  # type: ignore[no-any-return]


def test_health(service: Service) -> None:
    body = service.get("/health").json()
    assert body["status"] == "healthy" and body["uptime"] >= 0 and body["timestamp"]


def test_features_and_models_list_the_deployed_cpu_models(service: Service) -> None:
    deployed = {m["model_id"] for m in MODELS}
    feats = service.get("/api/v1/system/features").json()
    names = {f["name"]: f for f in feats["features"]}
    assert feats["total_features"] == len(feats["features"]) == 11  # every feature of the spec
    assert set(names) == set(FEATURES)
    assert names["retopology"]["models"] == ["quadric_retopology"]
    assert names["mesh_segmentation"]["default_model"] == "spectral_mesh_segmentation"
    models = service.get("/api/v1/system/models").json()
    assert models["available_models"]["mesh_segmentation"] == [
        "spectral_mesh_segmentation",
        "sleep_mesh_segmentation",
    ]
    assert models["total_models"] == len(deployed)
    assert {m for ids in models["available_models"].values() for m in ids} == deployed
    one = service.get("/api/v1/system/models", params={"feature": "retopology"}).json()
    assert one["available_models"] == {"retopology": ["quadric_retopology"]}
    assert_error(service.get("/api/v1/system/models", params={"feature": "nope"}), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "path,keys",
    [
        ("/api/v1/system/supported-formats", {"input_formats", "output_formats", "content_types"}),
        ("/api/v1/file-upload/supported-formats", {"image", "mesh", "retention"}),
        (
            "/api/v1/mesh-generation/supported-formats",
            {"input_formats", "output_formats", "upload_limits"},
        ),
        ("/api/v1/mesh-segmentation/supported-formats", {"input_formats", "output_formats"}),
        ("/api/v1/auto-rigging/supported-formats", {"input_formats", "output_formats"}),
        ("/api/v1/mesh-retopology/supported-formats", {"input_formats", "output_formats"}),
        ("/api/v1/mesh-uv-unwrapping/supported-formats", {"input_formats", "output_formats"}),
        ("/api/v1/mesh-uv-unwrapping/pack-methods", {"pack_methods"}),
        ("/api/v1/mesh-retopology/available-models", {"available_models", "models_details"}),
        ("/api/v1/mesh-uv-unwrapping/available-models", {"available_models", "models_details"}),
    ],
)
def test_static_routes_have_the_spec_shape(service: Service, path: str, keys: set[str]) -> None:
    resp = service.get(path)
    assert resp.status_code == 200, resp.text
    assert keys <= set(resp.json())


def test_upload_limits_match_the_settings(service: Service) -> None:
    body = service.get("/api/v1/file-upload/supported-formats").json()
    assert body["mesh"]["max_size_mb"] == 20 and body["image"]["max_size_mb"] == 5
    assert ".glb" in body["mesh"]["formats"] and ".png" in body["image"]["formats"]


def test_status_and_scheduler_status(service: Service) -> None:
    status = service.get("/api/v1/system/status").json()
    assert {"timestamp", "system", "gpu", "models", "queue"} <= set(status)
    assert status["system"]["memory"]["total"] > 0
    assert status["gpu"] == []  # no GPU on this machine: an honest empty list
    sched = service.get("/api/v1/system/scheduler-status").json()
    assert sched["scheduler"]["running"] is True
    assert set(sched["scheduler"]["models"]) == {m["model_id"] for m in MODELS}
    assert sched["adapters_registered"] == len(MODELS)


def test_unknown_route_and_method_use_the_envelope(service: Service) -> None:
    assert_error(service.get("/api/v1/nope"), 404, "NOT_FOUND")
    assert_error(service.delete("/health"), 405, "API_ERROR")


def test_validation_errors_use_the_envelope(service: Service) -> None:
    url = "/api/v1/mesh-segmentation/segment-mesh"
    body = assert_error(
        service.post(url, json={"mesh_file_id": "x", "num_parts": 99}), 422, "INVALID_VALUE"
    )
    assert body["detail"][0]["field"] == "num_parts"
    assert_error(
        service.post(url, data="{not json", headers={"content-type": "application/json"}),
        422,
        "INVALID_VALUE",
    )
    assert_error(service.post(url, json={"num_parts": 4}), 422, "INVALID_VALUE")
    assert_error(
        service.post(url, json={"mesh_file_id": "a", "mesh_base64": "b"}), 422, "INVALID_VALUE"
    )
    assert_error(service.post(url, json={"mesh_file_id": "a", "bogus": 1}), 422, "INVALID_VALUE")
    assert_error(service.post(url, json={"mesh_file_id": "file_missing"}), 404, "NOT_FOUND")
    assert_error(
        service.get("/api/v1/system/jobs/history", params={"limit": 0}), 422, "INVALID_VALUE"
    )
    assert_error(
        service.get("/api/v1/system/jobs/history", params={"status": "nope"}), 422, "INVALID_VALUE"
    )
    assert_error(
        service.get("/api/v1/system/jobs/history", params={"start_date": "yesterday"}),
        422,
        "INVALID_VALUE",
    )


def test_unknown_ids_are_not_found(service: Service) -> None:
    for path in (
        "/api/v1/system/jobs/job_nope",
        "/api/v1/system/jobs/job_nope/info",
        "/api/v1/system/jobs/job_nope/download",
        "/api/v1/system/jobs/job_nope/thumbnail",
        "/api/v1/file-upload/metadata/file_nope",
    ):
        assert_error(service.get(path), 404, "NOT_FOUND")
    assert_error(service.delete("/api/v1/system/jobs/job_nope/result"), 404, "NOT_FOUND")
    assert_error(service.post("/api/v1/system/jobs/job_nope/cancel"), 404, "NOT_FOUND")


def test_a_model_of_another_feature_is_refused(service: Service) -> None:
    resp = service.post(
        "/api/v1/mesh-generation/text-to-raw-mesh",
        json={"text_prompt": "a chair", "model_preference": "quadric_retopology"},
    )
    body = assert_error(resp, 400, "MODEL_NOT_AVAILABLE")
    assert body["detail"]["available_models"] == ["catalogue_text_to_raw_mesh"]


def test_unknown_model_preference_lists_alternatives(service: Service) -> None:
    resp = service.post(
        "/api/v1/mesh-segmentation/segment-mesh",
        json={"mesh_file_id": "file_x", "model_preference": "nope_model"},
    )
    body = assert_error(resp, 400, "MODEL_NOT_AVAILABLE")
    assert body["detail"]["available_models"] == [
        "spectral_mesh_segmentation",
        "sleep_mesh_segmentation",
    ]


def test_openapi_docs_and_redoc(service: Service) -> None:
    spec = service.get("/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/api/v1/mesh-segmentation/segment-mesh",
        "/api/v1/system/jobs/history",
        "/api/v1/file-upload/mesh",
        "/api/v1/mesh-uv-unwrapping/unwrap-mesh",
        "/health",
    ):
        assert p in paths
    schema = spec["components"]["schemas"]["SegmentMeshRequest"]
    assert schema["example"]["num_parts"] == 8
    upload = paths["/api/v1/file-upload/mesh"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "swagger-ui" in service.get("/docs").text
    assert "redoc" in service.get("/redoc").text.lower()


def test_security_headers(service: Service) -> None:
    resp = service.get("/health")
    assert resp.headers["x-content-type-options"] == "nosniff"
