"""IDOR: with auth on, a second user tries to read, download, cancel and delete the first
user's jobs and files. Every attempt must look exactly like a missing id (404)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.conftest import AuthService, Service
from tests.integration.test_api import assert_error

JOB_ROUTES = [
    ("GET", "/api/v1/system/jobs/{job_id}"),
    ("GET", "/api/v1/system/jobs/{job_id}/info"),
    ("GET", "/api/v1/system/jobs/{job_id}/download"),
    ("GET", "/api/v1/system/jobs/{job_id}/download?format=base64"),
    ("GET", "/api/v1/system/jobs/{job_id}/thumbnail"),
    ("GET", "/api/v1/system/jobs/{job_id}/thumbnail?format=base64"),
    ("GET", "/api/v1/system/jobs/{job_id}/files/{name}"),
    ("GET", "/api/v1/system/jobs/{job_id}/events"),
    ("POST", "/api/v1/system/jobs/{job_id}/cancel"),
    ("DELETE", "/api/v1/system/jobs/{job_id}/result"),
]
FILE_ROUTES = [("GET", "/api/v1/file-upload/metadata/{file_id}")]


@pytest.fixture(scope="module")
def owned(auth_service: AuthService, assets_dir: Any) -> dict[str, Any]:
    """User A with an upload and a completed job; user B, who owns nothing of it."""
    alice, a_info = auth_service.new_user()
    bob, b_info = auth_service.new_user()
    upload = alice.upload("mesh", assets_dir / "cow.obj")
    resp = alice.post(
        "/api/v1/mesh-retopology/retopologize-mesh",
        json={"mesh_file_id": upload["file_id"], "target_vertex_count": 300},
    )
    assert resp.status_code == 200, resp.text
    job = alice.wait(resp.json()["job_id"])
    assert job["status"] == "completed", job
    name = job["result"]["files"][0]["filename"]
    return {"alice": alice, "bob": bob, "job": job, "file": upload, "name": name, "a": a_info}


def _fill(path: str, job_id: str, file_id: str, name: str) -> str:
    return path.format(job_id=job_id, file_id=file_id, name=name)


def test_routes_with_ids_are_all_covered(auth_service: AuthService) -> None:
    """Every route of the OpenAPI document that takes a job or file id is checked below."""
    spec = auth_service.get("/openapi.json").json()
    with_ids = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if "{job_id}" in path or "{file_id}" in path
    }
    checked = {(m, p.split("?")[0]) for m, p in JOB_ROUTES + FILE_ROUTES}
    assert with_ids == checked


@pytest.mark.parametrize("method,path", JOB_ROUTES + FILE_ROUTES)
def test_another_users_ids_answer_like_missing_ones(
    owned: dict[str, Any], method: str, path: str
) -> None:
    bob: Service = owned["bob"]
    job_id, file_id, name = owned["job"]["job_id"], owned["file"]["file_id"], owned["name"]
    theirs = bob._request(method, _fill(path, job_id, file_id, name))
    missing_job, missing_file = "job_0000000000000000", "file_0000000000000000"
    absent = bob._request(method, _fill(path, missing_job, missing_file, name))
    got, expected = assert_error(theirs, 404, "NOT_FOUND"), assert_error(absent, 404, "NOT_FOUND")
    # Same answer, up to the id itself: nothing tells "exists, not yours" from "no such id".
    scrub = {job_id: "ID", file_id: "ID", missing_job: "ID", missing_file: "ID"}
    for body in (got, expected):
        for key, value in scrub.items():
            body["message"] = body["message"].replace(key, value)
            body["detail"] = {k: scrub.get(v, v) for k, v in (body["detail"] or {}).items()}
    assert got == expected


def test_the_owner_still_reaches_everything(owned: dict[str, Any]) -> None:
    alice: Service = owned["alice"]
    job_id, name = owned["job"]["job_id"], owned["name"]
    for path in (
        f"/api/v1/system/jobs/{job_id}",
        f"/api/v1/system/jobs/{job_id}/info",
        f"/api/v1/system/jobs/{job_id}/download",
        f"/api/v1/system/jobs/{job_id}/thumbnail",
        f"/api/v1/system/jobs/{job_id}/files/{name}",
        f"/api/v1/file-upload/metadata/{owned['file']['file_id']}",
    ):
        assert alice.get(path).status_code == 200, path
    assert_error(alice.post(f"/api/v1/system/jobs/{job_id}/cancel"), 409, "API_ERROR")


def test_history_is_scoped_to_the_caller(auth_service: AuthService, owned: dict[str, Any]) -> None:
    job_id = owned["job"]["job_id"]
    mine = owned["alice"].get("/api/v1/system/jobs/history").json()
    assert job_id in [j["job_id"] for j in mine["jobs"]]
    theirs = owned["bob"].get("/api/v1/system/jobs/history").json()
    assert theirs["jobs"] == [] and theirs["pagination"]["total"] == 0
    assert auth_service.admin is not None
    everyone = auth_service.admin.get("/api/v1/system/jobs/history", params={"limit": 500}).json()
    assert job_id in [j["job_id"] for j in everyone["jobs"]]


def test_another_users_file_cannot_be_a_job_input(owned: dict[str, Any]) -> None:
    bob: Service = owned["bob"]
    file_id = owned["file"]["file_id"]
    for url, body in (
        ("/api/v1/mesh-retopology/retopologize-mesh", {"mesh_file_id": file_id}),
        ("/api/v1/mesh-segmentation/segment-mesh", {"mesh_file_id": file_id, "num_parts": 4}),
    ):
        assert_error(bob.post(url, json=body), 404, "NOT_FOUND")
    assert bob.get("/api/v1/system/jobs/history").json()["pagination"]["total"] == 0


def test_paths_and_urls_carry_the_route_prefix(owned: dict[str, Any]) -> None:
    """The auth app is mounted at /auth: every link in a job document must work as given."""
    alice: Service = owned["alice"]
    job = owned["job"]
    result = job["result"]
    assert result["output_mesh_path"] == f"/auth/api/v1/system/jobs/{job['job_id']}/download"
    assert result["mesh_url"] == alice.url + f"/api/v1/system/jobs/{job['job_id']}/download"
    base = alice.url.removesuffix("/auth")
    for link in (result["output_mesh_path"], result["thumbnail_path"]):
        got = requests.get(base + link, headers=alice.headers, timeout=60)
        assert got.status_code == 200, link
    for f in result["files"]:
        assert alice.get(f["url"].removeprefix(alice.url)).status_code == 200
    info = alice.get(f"/api/v1/system/jobs/{job['job_id']}/info").json()
    assert info["download_urls"]["direct_download"].startswith("/auth/api/v1/")
    docs = alice.get("/docs").text
    assert "/auth/openapi.json" in docs
    assert alice.get("/openapi.json").json()["servers"] == [{"url": "/auth"}]


def test_admins_see_and_delete_others_results(
    auth_service: AuthService, owned: dict[str, Any]
) -> None:
    """Runs last in this module: it deletes the owner's result."""
    admin = auth_service.admin
    assert admin is not None
    job_id = owned["job"]["job_id"]
    assert admin.get(f"/api/v1/system/jobs/{job_id}").status_code == 200
    assert admin.get(f"/api/v1/file-upload/metadata/{owned['file']['file_id']}").status_code == 200
    assert_error(owned["bob"].delete(f"/api/v1/system/jobs/{job_id}/result"), 404, "NOT_FOUND")
    deleted = admin.delete(f"/api/v1/system/jobs/{job_id}/result")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert_error(owned["alice"].get(f"/api/v1/system/jobs/{job_id}/download"), 404, "NOT_FOUND")
