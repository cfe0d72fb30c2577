"""Every feature through the API with the CPU models: the spec's examples, real assets,
outputs opened by independent readers (trimesh, the Khronos validator, ufbx)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from deployments.geometry.gltf_validator import error_messages, validate_gltf
from tests.integration.conftest import Service


def run_job(service: Service, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = service.post(path, json=body)
    assert resp.status_code == 200, resp.text
    job = service.wait(resp.json()["job_id"], timeout=300)
    assert job["status"] == "completed", job
    assert job["result"]["thumbnail_file_info"]["content_type"] == "image/png"
    return job


def download(service: Service, job: dict[str, Any]) -> bytes:
    resp = service.get(f"/api/v1/system/jobs/{job['job_id']}/download")
    assert resp.status_code == 200
    return resp.content


def assert_valid_glb(data: bytes) -> None:
    report = validate_gltf(data)
    if report is None:
        pytest.skip("Khronos glTF validator (node) not installed")
    assert error_messages(report) == []


def load(data: bytes, ext: str) -> trimesh.Trimesh:
    return trimesh.load(io.BytesIO(data), file_type=ext, force="mesh")


@pytest.fixture(scope="module")
def ids(service: Service, assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("cpu")
    picture = Image.new("RGB", (384, 384), "white")
    ImageDraw.Draw(picture).ellipse((80, 60, 300, 330), fill=(200, 40, 30))
    picture.save(tmp / "object.png")
    return {
        "image": service.upload("image", tmp / "object.png")["file_id"],
        "texture": service.upload("image", assets_dir / "spot_texture.png")["file_id"],
        "spot": service.upload("mesh", assets_dir / "spot_textured.glb")["file_id"],
        "bunny": service.upload("mesh", assets_dir / "stanford-bunny.obj")["file_id"],
        "cheburashka": service.upload("mesh", assets_dir / "cheburashka.obj")["file_id"],
    }


def test_example_1_text_to_textured_mesh(service: Service) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/text-to-textured-mesh",
        {
            "text_prompt": "A red sports car",
            "texture_prompt": "shiny metallic paint",
            "texture_resolution": 1024,
            "output_format": "glb",
            "model_preference": "trellis_text_to_textured_mesh",
        },
    )
    info = job["result"]["generation_info"]
    assert info["model_used"] == "catalogue_text_to_textured_mesh"
    assert info["approximate"] is True and "not a generative model" in info["method"]
    glb = download(service, job)
    assert_valid_glb(glb)
    assert len(load(glb, "glb").faces) > 0


def test_text_to_raw_mesh_is_deterministic_for_a_seed(service: Service) -> None:
    body = {"text_prompt": "a wooden chair", "output_format": "obj", "seed": 7}
    first = download(service, run_job(service, "/api/v1/mesh-generation/text-to-raw-mesh", body))
    again = download(service, run_job(service, "/api/v1/mesh-generation/text-to-raw-mesh", body))
    assert first == again and len(load(first, "obj").faces) > 0


def test_text_mesh_painting(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/text-mesh-painting",
        {
            "text_prompt": "rusty metal texture",
            "mesh_file_id": ids["spot"],
            "texture_resolution": 512,
            "output_format": "glb",
        },
    )
    assert_valid_glb(download(service, job))


def test_example_2_image_to_textured_mesh(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/image-to-textured-mesh",
        {
            "image_file_id": ids["image"],
            "texture_resolution": 1024,
            "output_format": "glb",
            "model_preference": "trellis_image_to_textured_mesh",
        },
    )
    glb = download(service, job)
    assert_valid_glb(glb)


def test_image_to_raw_mesh_is_watertight(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/image-to-raw-mesh",
        {"image_file_id": ids["image"], "output_format": "ply"},
    )
    mesh = load(download(service, job), "ply")
    mesh.merge_vertices()
    assert mesh.is_watertight


def test_example_3_image_mesh_painting(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/image-mesh-painting",
        {
            "image_file_id": ids["texture"],
            "mesh_file_id": ids["spot"],
            "texture_resolution": 512,
            "output_format": "glb",
            "model_preference": "trellis_image_mesh_painting",
        },
    )
    assert_valid_glb(download(service, job))
    assert 0 < job["result"]["generation_info"]["visible_fraction"] <= 1


def test_part_completion_fills_the_bunny(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-generation/part-completion",
        {"mesh_file_id": ids["bunny"], "output_format": "ply"},
    )
    mesh = load(download(service, job), "ply")
    mesh.merge_vertices()
    assert mesh.is_watertight


def test_example_5_auto_rigging_to_fbx(service: Service, ids: dict, tmp_path: Path) -> None:
    job = run_job(
        service,
        "/api/v1/auto-rigging/generate-rig",
        {
            "mesh_file_id": ids["cheburashka"],
            "rig_mode": "skin",
            "output_format": "fbx",
            "model_preference": "unirig_auto_rig",
        },
    )
    path = tmp_path / "rig.fbx"
    path.write_bytes(download(service, job))
    import ufbx

    scene = ufbx.load_file(str(path))
    try:
        assert len(scene.bones) >= 5 and len(scene.skin_deformers) == 1
    finally:
        scene.close()


def test_auto_rigging_glb_weights(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/auto-rigging/generate-rig",
        {"mesh_file_id": ids["cheburashka"], "rig_mode": "full", "output_format": "glb"},
    )
    glb = download(service, job)
    assert_valid_glb(glb)


def test_uv_unwrapping_respects_the_threshold(service: Service, ids: dict) -> None:
    job = run_job(
        service,
        "/api/v1/mesh-uv-unwrapping/unwrap-mesh",
        {
            "mesh_file_id": ids["spot"],
            "distortion_threshold": 1.25,
            "pack_method": "blender",
            "save_individual_parts": True,
            "save_visuals": False,
            "output_format": "obj",
        },
    )
    result = job["result"]
    assert result["uv_info"]["pack_method"] == "blender"
    assert all(c["distortion"] <= 1.25 for c in result["uv_info"]["components_info"])
    mesh = trimesh.load(io.BytesIO(download(service, job)), file_type="obj", force="mesh")
    uv = mesh.visual.uv
    assert uv is not None and np.all((uv >= -1e-6) & (uv <= 1 + 1e-6))


def test_uvpackmaster_is_a_clear_failure(service: Service, ids: dict) -> None:
    resp = service.post(
        "/api/v1/mesh-uv-unwrapping/unwrap-mesh",
        json={"mesh_file_id": ids["spot"], "pack_method": "uvpackmaster"},
    )
    job = service.wait(resp.json()["job_id"])
    assert job["status"] == "failed" and "UVPackMaster" in job["error"]["message"]
