"""One test per hole of the seed's original implementation (issue 6), on the auth-on app.

Covered elsewhere and not repeated here: any bearer string accepted
(test_auth::test_missing_invalid_and_forged_tokens_are_refused), plaintext tokens and
single-round SHA-256 passwords (test_auth::test_api_tokens_are_shown_once_stored_hashed_and
_revocable), `*_path` confinement with auth off (test_jobs::test_server_paths_are_confined,
unit/test_inputs), upload limits while streaming with auth off
(test_jobs::test_oversize_upload_is_refused_while_streaming).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.integration.conftest import AuthService, client_address
from tests.integration.test_api import assert_error
from tests.integration.test_jobs import _stream_until_refused

RETOPO = "/api/v1/mesh-retopology/retopologize-mesh"
IMAGE_TO_MESH = "/api/v1/mesh-generation/image-to-raw-mesh"
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/api/v1/system/features"),
    ("GET", "/api/v1/system/scheduler-status"),
    ("GET", "/api/v1/system/supported-formats"),
    ("GET", "/api/v1/file-upload/supported-formats"),
    ("GET", "/api/v1/mesh-generation/supported-formats"),
    ("GET", "/api/v1/mesh-segmentation/supported-formats"),
    ("GET", "/api/v1/auto-rigging/supported-formats"),
    ("GET", "/api/v1/mesh-retopology/supported-formats"),
    ("GET", "/api/v1/mesh-retopology/available-models"),
    ("GET", "/api/v1/mesh-uv-unwrapping/supported-formats"),
    ("GET", "/api/v1/mesh-uv-unwrapping/pack-methods"),
    ("GET", "/api/v1/mesh-uv-unwrapping/available-models"),
    ("POST", "/api/v1/users/login"),
}


def _operations(svc: AuthService) -> list[tuple[str, str]]:
    spec = svc.get("/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops)


def _call(svc: AuthService, method: str, path: str, **kw: Any) -> Any:
    filled = path.format(
        job_id="job_0", file_id="file_0", name="x", token_id="tok_0", model_id="model_0"
    )
    body = {"json": {}} if method in ("POST", "PUT") else {}
    return svc._request(method, filled, **body, **kw)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Token abc"}],
    ids=["missing", "garbage", "wrong-scheme"],
)
def test_every_non_public_route_needs_a_valid_token(
    auth_service: AuthService, headers: dict[str, str]
) -> None:
    """Holes: job routes listing every user's jobs without a valid token; any bearer
    string accepted. Swept over the whole OpenAPI document, so new routes are covered."""
    operations = _operations(auth_service)
    assert PUBLIC <= set(operations)
    for method, path in operations:
        if (method, path) in PUBLIC:
            continue
        resp = _call(auth_service, method, path, headers=headers)
        assert_error(resp, 401, "UNAUTHORIZED")
    for method, path in PUBLIC - {("POST", "/api/v1/users/login")}:
        assert _call(auth_service, method, path, headers=headers).status_code == 200, path


def test_no_shutdown_log_or_debug_routes(auth_service: AuthService) -> None:
    """Hole: unauthenticated shutdown and log routes. None exist, with or without a token,
    and the admin-only system status refuses plain users."""
    for _, path in _operations(auth_service):
        words = {"shutdown", "stop", "log", "logs", "exec", "debug", "restart", "eval"}
        assert not words & set(path.split("/")), path
    user, _ = auth_service.new_user()
    for method in ("GET", "POST"):
        for path in ("/api/v1/system/shutdown", "/api/v1/system/logs", "/shutdown", "/logs"):
            assert_error(user._request(method, path), 404, "NOT_FOUND")
    assert_error(user.get("/api/v1/system/status"), 403, "FORBIDDEN")
    assert auth_service.admin is not None
    status = auth_service.admin.get("/api/v1/system/status")
    assert status.status_code == 200 and "queue" in status.json()
    # Loading and unloading models changes the cluster: admins only.
    for action in ("load", "unload"):
        path = f"/api/v1/system/models/quadric_retopology/{action}"
        assert_error(auth_service.post(path), 401, "UNAUTHORIZED")
        assert_error(user.post(path), 403, "FORBIDDEN")
        assert_error(auth_service.admin.post(path), 400, "INVALID_VALUE")  # a CPU model


def test_server_paths_cannot_read_or_serve_back_files(
    auth_service: AuthService, assets_dir: Path
) -> None:
    """Hole: arbitrary file read through `*_path` plus a route that served it back."""
    user, _ = auth_service.new_user()
    allowed = Path(auth_service.settings.allowed_input_dirs[0])
    for bad in (
        "/etc/passwd",
        str(allowed / ".." / ".." / "etc" / "passwd"),
        "/dev/zero",
        "/proc/self/environ",
    ):
        resp = user.post(RETOPO, json={"mesh_path": bad})
        body = assert_error(resp, 422, "INVALID_VALUE")
        assert "passwd" not in json.dumps(body) and "environ" not in json.dumps(body)
    link = allowed / "link-out.obj"
    if not link.exists():
        os.symlink("/etc/passwd", link)
    assert_error(user.post(RETOPO, json={"mesh_path": str(link)}), 422, "INVALID_VALUE")
    inside = allowed / "cow.obj"
    inside.write_bytes((assets_dir / "cow.obj").read_bytes())
    resp = user.post(RETOPO, json={"mesh_path": str(inside), "target_vertex_count": 300})
    assert resp.status_code == 200, resp.text
    job = user.wait(resp.json()["job_id"])
    assert job["status"] == "completed", job
    assert str(allowed) not in json.dumps(job) and "/tmp" not in json.dumps(job)
    # Inputs are never downloadable: only the job's outputs are.
    files = [f["filename"] for f in job["result"]["files"]]
    assert "cow.obj" not in files
    assert_error(user.get(f"/api/v1/system/jobs/{job['job_id']}/files/cow.obj"), 404, "NOT_FOUND")
    history = user.get("/api/v1/system/jobs/history").json()
    assert str(allowed) not in json.dumps(history)


def test_image_paths_are_confined_too(auth_service: AuthService, tmp_path: Path) -> None:
    """The seed's hole was `image_path` specifically: same confinement as meshes."""
    user, _ = auth_service.new_user()
    allowed = Path(auth_service.settings.allowed_input_dirs[0])
    outside = tmp_path / "private.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(outside)
    link = allowed / "private-link.png"
    if not link.exists():
        os.symlink(outside, link)
    for bad in ("/etc/passwd", str(outside), str(link), "/dev/urandom"):
        resp = user.post(IMAGE_TO_MESH, json={"image_path": bad})
        assert_error(resp, 422, "INVALID_VALUE")
    inside = allowed / "red.png"
    Image.new("RGBA", (96, 96), (0, 0, 0, 0)).save(inside)
    resp = user.post(IMAGE_TO_MESH, json={"image_path": str(inside), "output_format": "obj"})
    assert resp.status_code == 200, resp.text
    job = user.wait(resp.json()["job_id"])
    assert str(allowed) not in json.dumps(job)
    assert_error(user.get(f"/api/v1/system/jobs/{job['job_id']}/files/red.png"), 404, "NOT_FOUND")


def test_uploads_are_refused_before_the_body_is_read(auth_service: AuthService) -> None:
    """Hole: upload limits checked only after the whole file was written. Without a token
    the body is not read at all; with one, the limit holds while it streams."""
    limit = auth_service.settings.mesh_max_size_mb * 1024 * 1024
    path = "/api/v1/file-upload/mesh"
    status, sent = _stream_until_refused(auth_service.url, path, limit, client_address())
    assert status == 401 and sent < limit
    assert auth_service.admin is not None
    status, sent = _stream_until_refused(auth_service.url, path, limit, auth_service.admin.headers)
    assert status == 413 and sent < limit * 3
