"""Jobs end to end on the real Serve application: uploads, real geometry, downloads."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import trimesh
from PIL import Image
from sqlalchemy import update

from persistence.db import make_engine
from persistence.models import StoredFile, utcnow
from tests.integration.conftest import Service
from tests.integration.test_api import assert_error

TETRA = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 2 3 4\nf 1 4 3\n"


def _submit(service: Service, path: str, body: dict) -> str:
    resp = service.post(path, json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["status"] == "queued" and out["job_id"].startswith("job_") and out["message"]
    return out["job_id"]  # type: ignore[no-any-return]


def test_retopology_end_to_end(service: Service, assets_dir: Path, tmp_path: Path) -> None:
    up = service.upload("mesh", assets_dir / "stanford-bunny.obj")
    assert up["file_type"] == "mesh" and up["filename"] == "stanford-bunny.obj"
    meta = service.get(f"/api/v1/file-upload/metadata/{up['file_id']}").json()
    assert meta["is_available"] is True and meta["expires_at"] > meta["upload_time"]
    job_id = _submit(
        service,
        "/api/v1/mesh-retopology/retopologize-mesh",
        {
            "mesh_file_id": up["file_id"],
            "target_vertex_count": 1000,
            "output_format": "obj",
            "seed": 42,
        },
    )
    job = service.wait(job_id)
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["original_stats"]["faces"] > 60000
    assert abs(result["output_stats"]["vertices"] - 1000) <= 100
    assert result["retopology_info"]["seed"] == 42
    assert result["retopology_info"]["vertex_reduction"].endswith("%")
    assert result["mesh_url"].endswith(f"/api/v1/system/jobs/{job_id}/download")
    assert result["mesh_file_info"]["content_type"] == "application/wavefront-obj"
    assert result["generation_info"]["model_used"] == "quadric_retopology"
    assert result["generation_info"]["thumbnail_generated"] is True
    assert job["processing_time"] > 0 and job["progress"]["fraction"] == 1.0
    # No server path anywhere in the job document.
    assert str(service.settings.data_dir) not in json.dumps(job)

    mesh_bytes = service.get(f"/api/v1/system/jobs/{job_id}/download").content
    out = tmp_path / "out.obj"
    out.write_bytes(mesh_bytes)
    mesh = trimesh.load(out, force="mesh")
    assert abs(len(mesh.vertices) - 1000) <= 100

    png = service.get(f"/api/v1/system/jobs/{job_id}/thumbnail")
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (512, 512)
    b64 = service.get(f"/api/v1/system/jobs/{job_id}/thumbnail", params={"format": "base64"}).json()
    assert base64.b64decode(b64["base64_data"]) == png.content
    named = service.get(
        f"/api/v1/system/jobs/{job_id}/download", params={"filename": "my bunny.obj"}
    )
    assert 'filename="my_bunny.obj"' in named.headers["content-disposition"]

    info = service.get(f"/api/v1/system/jobs/{job_id}/info").json()
    assert info["file_info"]["file_exists"] is True and info["file_info"]["file_format"] == "obj"
    assert info["download_urls"]["base64_download"].endswith("format=base64")

    hist = service.get(
        "/api/v1/system/jobs/history", params={"feature": "retopology", "status": "completed"}
    ).json()
    assert job_id in [j["job_id"] for j in hist["jobs"]]
    assert hist["filters"]["feature"] == "retopology"

    deleted = service.delete(f"/api/v1/system/jobs/{job_id}/result").json()
    assert deleted["deleted"] is True and deleted["freed_space_mb"] > 0
    assert_error(service.get(f"/api/v1/system/jobs/{job_id}/download"), 404, "NOT_FOUND")
    assert_error(service.delete(f"/api/v1/system/jobs/{job_id}/result"), 404, "NOT_FOUND")


def test_spec_example_4_segmentation_of_a_glb(
    service: Service, assets_dir: Path, tmp_path: Path
) -> None:
    up = service.upload("mesh", assets_dir / "spot_textured.glb", "mesh.glb")
    resp = service.post(
        "/api/v1/mesh-segmentation/segment-mesh",
        json={
            "mesh_file_id": up["file_id"],
            "num_parts": 5,
            "output_format": "glb",
            "model_preference": "partfield_mesh_segmentation",
        },
    )
    assert resp.status_code == 200, resp.text
    assert "spectral_mesh_segmentation" in resp.json()["message"]  # the fallback is visible
    job = service.wait(resp.json()["job_id"])
    assert job["status"] == "completed", job
    info = job["result"]["generation_info"]
    assert info["model_used"] == "spectral_mesh_segmentation"
    assert info["parameters"]["requested_model"] == "partfield_mesh_segmentation"
    assert info["approximate"] is True
    glb = tmp_path / "seg.glb"
    glb.write_bytes(service.get(f"/api/v1/system/jobs/{job['job_id']}/download").content)
    scene = trimesh.load(glb)
    assert len(scene.geometry) == 5
    labels_url = next(
        f["url"] for f in job["result"]["files"] if f["filename"] == "segmentation_labels.json"
    )
    labels = service.get(labels_url.replace(service.url, "")).json()
    assert labels["num_parts"] == 5 and len(set(labels["face_labels"])) == 5


def test_base64_input_and_a_failing_job(service: Service) -> None:
    job_id = _submit(
        service,
        "/api/v1/mesh-segmentation/segment-mesh",
        {"mesh_base64": base64.b64encode(TETRA).decode(), "num_parts": 8},
    )
    job = service.wait(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "JOB_FAILED"
    assert job["error"]["message"]
    assert_error(service.get(f"/api/v1/system/jobs/{job_id}/download"), 422, "JOB_FAILED")


def test_bad_inline_inputs_are_refused(service: Service) -> None:
    url = "/api/v1/mesh-retopology/retopologize-mesh"
    assert_error(service.post(url, json={"mesh_base64": "@@@"}), 422, "INVALID_VALUE")
    garbage = base64.b64encode(b"this is not a mesh at all").decode()
    assert_error(service.post(url, json={"mesh_base64": garbage}), 422, "INVALID_VALUE")
    tetra = base64.b64encode(TETRA).decode()
    body = assert_error(
        service.post(url, json={"mesh_base64": tetra, "output_format": "fbx"}), 422, "INVALID_VALUE"
    )
    assert "obj" in body["detail"]["supported"]


def test_server_paths_are_confined(service: Service, assets_dir: Path) -> None:
    allowed = Path(service.settings.allowed_input_dirs[0])
    inside = allowed / "cow.obj"
    inside.write_bytes((assets_dir / "cow.obj").read_bytes())
    url = "/api/v1/mesh-retopology/retopologize-mesh"
    job_id = _submit(service, url, {"mesh_path": str(inside), "target_vertex_count": 500})
    assert service.wait(job_id)["status"] == "completed"
    assert_error(
        service.post(url, json={"mesh_path": str(allowed / ".." / "x.obj")}), 422, "INVALID_VALUE"
    )
    assert_error(
        service.post(url, json={"mesh_path": str(assets_dir / "cow.obj")}), 422, "INVALID_VALUE"
    )
    link = allowed / "escape.obj"
    if not link.exists():
        os.symlink(assets_dir / "cow.obj", link)
    assert_error(service.post(url, json={"mesh_path": str(link)}), 422, "INVALID_VALUE")
    assert_error(service.post(url, json={"mesh_path": "/dev/zero"}), 422, "INVALID_VALUE")
    assert_error(service.post(url, json={"mesh_path": str(allowed / "none.obj")}), 404, "NOT_FOUND")


def test_corrupt_and_mislabelled_uploads(service: Service, assets_dir: Path) -> None:
    def up(kind: str, name: str, data: bytes):  # type: ignore[no-untyped-def]
        return service.post(f"/api/v1/file-upload/{kind}", files={"file": (name, data)})

    glb = (assets_dir / "Duck.glb").read_bytes()
    assert_error(up("mesh", "cut.glb", glb[: len(glb) // 2]), 400, "FILE_UPLOAD_ERROR")
    png = (assets_dir / "spot_texture.png").read_bytes()
    assert_error(up("mesh", "fake.obj", png), 400, "FILE_UPLOAD_ERROR")
    assert_error(up("image", "fake.png", TETRA), 400, "FILE_UPLOAD_ERROR")
    assert_error(up("image", "cut.png", png[:200]), 400, "FILE_UPLOAD_ERROR")
    assert_error(up("mesh", "empty.obj", b""), 400, "FILE_UPLOAD_ERROR")
    assert_error(
        service.post("/api/v1/file-upload/mesh", data=b"x", headers={"content-type": "text/plain"}),
        400,
        "FILE_UPLOAD_ERROR",
    )
    assert_error(
        service.post("/api/v1/file-upload/mesh", files={"other": ("a.obj", TETRA)}),
        400,
        "FILE_UPLOAD_ERROR",
    )
    # Content decides, not the extension: an OBJ named .png is still a mesh.
    ok = up("mesh", "really_an_obj.png", TETRA)
    assert ok.status_code == 200 and ok.json()["filename"] == "really_an_obj.obj"
    img = up("image", "spot.png", png).json()
    assert img["file_type"] == "image" and img["info"]["width"] == 1024


def _stream_until_refused(
    url: str, path: str, limit: int, headers: dict[str, str] | None = None
) -> tuple[int, int]:
    """Send a chunked multipart body that never ends; return (status, bytes sent) when the
    server answers. A server that reads everything first would never answer."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    boundary = "xBOUNDARYx"
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(
        (
            f"POST {parsed.path}{path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{extra}\r\n"
        ).encode()
    )
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.obj"\r\n\r\n'
    ).encode()
    chunk = b"v 0 0 0\n" * 8192
    sent = 0
    sock.settimeout(0.01)
    payload = head
    deadline = time.monotonic() + 120
    while sent < limit * 20 and time.monotonic() < deadline:
        data = payload or chunk
        payload = b""
        try:
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        except OSError:
            break
        sent += len(data)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except (TimeoutError, BlockingIOError):
            pass
    sock.settimeout(30)
    reply = b""
    while b"\r\n" not in reply:
        part = sock.recv(4096)
        if not part:
            break
        reply += part
    sock.close()
    return int(reply.split(b" ")[1]), sent


def test_oversize_upload_is_refused_while_streaming(service: Service) -> None:
    limit = service.settings.mesh_max_size_mb * 1024 * 1024
    status, sent = _stream_until_refused(service.url, "/api/v1/file-upload/mesh", limit)
    assert status == 413
    assert sent < limit * 3, f"server read {sent} bytes before refusing a {limit}-byte limit"


def test_oversize_json_body_is_refused(service: Service) -> None:
    big = service.settings.json_body_max_mb * 1024 * 1024 + 1
    resp = service.post(
        "/api/v1/mesh-retopology/retopologize-mesh",
        data=b"{" + b" " * big + b"}",
        headers={"content-type": "application/json"},
    )
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_retention_sweeper_deletes_object_and_row(service: Service, assets_dir: Path) -> None:
    up = service.upload("mesh", assets_dir / "suzanne.obj")
    engine = make_engine(service.settings.resolved_database_url())
    with engine.begin() as conn:
        conn.execute(
            update(StoredFile)
            .where(StoredFile.id == up["file_id"])  # type: ignore[arg-type]
            .values(expires_at=utcnow())
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if service.get(f"/api/v1/file-upload/metadata/{up['file_id']}").status_code == 404:
            break
        time.sleep(0.5)
    assert_error(service.get(f"/api/v1/file-upload/metadata/{up['file_id']}"), 404, "NOT_FOUND")
    from persistence.storage import make_store

    store = make_store(service.settings)
    assert store.list(f"uploads/{up['file_id']}/") == []
    engine.dispose()


def test_event_stream_reports_progress_until_done(service: Service, assets_dir: Path) -> None:
    up = service.upload("mesh", assets_dir / "fandisk.obj")
    job_id = _submit(
        service,
        "/api/v1/mesh-segmentation/segment-mesh",
        {"mesh_file_id": up["file_id"], "num_parts": 6},
    )
    import requests

    events = []
    with requests.get(
        f"{service.url}/api/v1/system/jobs/{job_id}/events", stream=True, timeout=120
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "completed"
    assert events[-1]["progress"]["fraction"] == 1.0
    assert len(events) >= 2
