"""Per-user limits on the auth-on application: submission rate and active-job cap."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.integration.conftest import AuthService
from tests.integration.test_api import assert_error

SEGMENT = "/api/v1/mesh-segmentation/segment-mesh"


def test_submissions_are_rate_limited_per_user(auth_service: AuthService) -> None:
    """The bucket counts attempts (valid or not); the next one waits `Retry-After`."""
    user, _ = auth_service.new_user()
    other, _ = auth_service.new_user()
    burst = auth_service.settings.job_submission_burst
    body = {"mesh_file_id": "file_0000000000000000"}
    for _ in range(burst):
        assert_error(user.post(SEGMENT, json=body), 404, "NOT_FOUND")
    resp = user.post(SEGMENT, json=body)
    err = assert_error(resp, 429, "RATE_LIMITED")
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert err["detail"]["retry_after_s"] == int(resp.headers["retry-after"])
    # Another user's bucket is untouched.
    assert_error(other.post(SEGMENT, json=body), 404, "NOT_FOUND")


def test_active_jobs_are_capped_per_user(auth_service: AuthService, assets_dir: Path) -> None:
    """Segmenting the bunny takes seconds and the model takes one job at a time, so the
    first jobs are still queued or processing when the next submission arrives."""
    user, _ = auth_service.new_user()
    other, _ = auth_service.new_user()
    cap = auth_service.settings.max_active_jobs_per_user
    up = user.upload("mesh", assets_dir / "stanford-bunny.obj")
    body = {"mesh_file_id": up["file_id"], "num_parts": 8}
    jobs = []
    for _ in range(cap):
        resp = user.post(SEGMENT, json=body)
        assert resp.status_code == 200, resp.text
        jobs.append(resp.json()["job_id"])
    resp = user.post(SEGMENT, json=body)
    err = assert_error(resp, 429, "RATE_LIMITED")
    assert err["detail"]["active_jobs"] == cap and err["detail"]["max_active_jobs"] == cap
    assert int(resp.headers["retry-after"]) >= 1
    # The cap is per user: someone else still submits (and cancels right away).
    mine = other.upload("mesh", assets_dir / "cow.obj")
    theirs = other.post(SEGMENT, json={"mesh_file_id": mine["file_id"], "num_parts": 4})
    assert theirs.status_code == 200, theirs.text
    other.post(f"/api/v1/system/jobs/{theirs.json()['job_id']}/cancel")
    for job_id in jobs:
        assert user.post(f"/api/v1/system/jobs/{job_id}/cancel").status_code in (200, 409)
    again = user.post(SEGMENT, json=body)
    assert again.status_code == 200, again.text
    user.post(f"/api/v1/system/jobs/{again.json()['job_id']}/cancel")


def test_image_resolution_limit_for_uploads_base64_and_paths(
    auth_service: AuthService, assets_dir: Path
) -> None:
    """The auth app allows 512 px; the spot texture is 1024 px square."""
    user, _ = auth_service.new_user()
    png = assets_dir / "spot_texture.png"
    assert auth_service.settings.image_max_resolution < 1024
    resp = user.post("/api/v1/file-upload/image", files={"file": ("spot.png", png.read_bytes())})
    assert "largest side" in assert_error(resp, 400, "FILE_UPLOAD_ERROR")["message"]
    url = "/api/v1/mesh-generation/image-to-raw-mesh"
    encoded = base64.b64encode(png.read_bytes()).decode()
    resp = user.post(url, json={"image_base64": encoded})
    assert "largest side" in assert_error(resp, 422, "INVALID_VALUE")["message"]
    inside = Path(auth_service.settings.allowed_input_dirs[0]) / "spot_texture.png"
    inside.write_bytes(png.read_bytes())
    resp = user.post(url, json={"image_path": str(inside)})
    assert "largest side" in assert_error(resp, 422, "INVALID_VALUE")["message"]
