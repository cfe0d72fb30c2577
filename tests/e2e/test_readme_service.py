"""End to end: start the service with the README's run command, drive the spec's Example 4
(upload a mesh, segment it, poll, download) with curl, then stop it with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trimesh

from meshforge.local_cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def curl(*args: str) -> str:
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def running_service(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = dict(
        os.environ,
        MESHFORGE_PORT=str(port),
        MESHFORGE_DATA_DIR=str(tmp / "data"),
        MESHFORGE_RUN_DIR=str(tmp / "run"),
    )
    log = (tmp / "service.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 600
    while "MeshForge is running at" not in (tmp / "service.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("service did not start:\n" + (tmp / "service.log").read_text())
        time.sleep(1)
    state = json.loads((tmp / "run" / "run.json").read_text())
    yield url, proc, state, tmp
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def test_example_4_segmentation_with_curl(running_service, assets_dir: Path) -> None:  # type: ignore[no-untyped-def]
    url, _, _, tmp = running_service
    assert f"MeshForge is running at {url}" in (tmp / "service.log").read_text()
    upload = json.loads(
        curl(
            "-X",
            "POST",
            f"{url}/api/v1/file-upload/mesh",
            "-F",
            f"file=@{assets_dir / 'spot_textured.glb'}",
        )
    )
    assert upload["file_type"] == "mesh"
    body = json.dumps(
        {
            "mesh_file_id": upload["file_id"],
            "num_parts": 8,
            "output_format": "glb",
            "model_preference": "partfield_mesh_segmentation",
        }
    )
    queued = json.loads(
        curl(
            "-X",
            "POST",
            f"{url}/api/v1/mesh-segmentation/segment-mesh",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        )
    )
    assert queued["status"] == "queued"
    job_id = queued["job_id"]
    deadline = time.monotonic() + 180
    while True:
        job = json.loads(curl(f"{url}/api/v1/system/jobs/{job_id}"))
        if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert job["status"] == "completed", job
    out = tmp / "segmented.glb"
    curl(f"{url}/api/v1/system/jobs/{job_id}/download", "-o", str(out))
    scene = trimesh.load(out)
    assert len(scene.geometry) == 8
    thumb = tmp / "preview.png"
    curl(f"{url}/api/v1/system/jobs/{job_id}/thumbnail", "-o", str(thumb))
    assert thumb.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The default profile keeps its data where it was told to: SQLite file and local store.
    assert (tmp / "data" / "meshforge.db").exists()
    assert list((tmp / "data" / "storage" / "jobs" / job_id).rglob("*.glb"))


def test_ctrl_c_stops_everything(running_service) -> None:  # type: ignore[no-untyped-def]
    url, proc, state, tmp = running_service
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    deadline = time.monotonic() + 120
    while any(_pid_alive(state[k]) for k in ("pid", "head_pid", "serve_pid")):
        assert time.monotonic() < deadline, "service still running after Ctrl-C"
        time.sleep(0.5)
    log = (tmp / "service.log").read_text()
    assert "Stopped." in log
    assert not (tmp / "run" / "run.json").exists()
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(
            ["curl", "-sf", f"{url}/health"], check=True, capture_output=True, timeout=10
        )
