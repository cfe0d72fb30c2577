"""Cancellation and failures mid-run: a killed job manager or a killed model replica loses
no job, leaves none stuck in processing, and completes none twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.integration.conftest import Service
from tests.integration.test_api import assert_error

SEGMENT = "/api/v1/mesh-segmentation/segment-mesh"


@pytest.fixture(scope="module")
def slow_mesh_id(service: Service, assets_dir: Path) -> str:
    """An uploaded mesh; jobs on it go to the test model that waits 4 s, then segments."""
    return service.upload("mesh", assets_dir / "cheburashka.obj")["file_id"]  # type: ignore[no-any-return]


def submit(service: Service, file_id: str, parts: int = 16) -> str:
    body = {
        "mesh_file_id": file_id,
        "num_parts": parts,
        "model_preference": "sleep_mesh_segmentation",
    }
    resp = service.post(SEGMENT, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["job_id"]  # type: ignore[no-any-return]


def wait_status(service: Service, job_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    return service.wait(job_id, timeout, until=(status, "completed", "failed", "cancelled"))


def test_cancel_queued_and_processing_jobs(service: Service, slow_mesh_id: str) -> None:
    first, second, third = (submit(service, slow_mesh_id) for _ in range(3))
    assert wait_status(service, first, "processing")["status"] == "processing"
    queued = service.get(f"/api/v1/system/jobs/{third}").json()
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    assert service.post(f"/api/v1/system/jobs/{third}/cancel").json()["status"] == "cancelled"
    assert service.post(f"/api/v1/system/jobs/{first}/cancel").json()["status"] == "cancelled"
    done = service.wait(second, 120)
    assert done["status"] == "completed", done
    for job_id in (first, third):
        job = service.get(f"/api/v1/system/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and "result" not in job
    assert_error(service.post(f"/api/v1/system/jobs/{second}/cancel"), 409, "API_ERROR")
    assert_error(service.get(f"/api/v1/system/jobs/{third}/download"), 409, "API_ERROR")


def test_killing_the_job_manager_loses_nothing(
    service: Service, slow_mesh_id: str, job_manager: Any
) -> None:
    jobs = [submit(service, slow_mesh_id, parts=12) for _ in range(3)]
    assert wait_status(service, jobs[0], "processing")["status"] == "processing"
    ray.kill(job_manager, no_restart=False)  # Ray restarts it; it rebuilds from the database
    finished = [service.wait(j, 180) for j in jobs]
    assert [j["status"] for j in finished] == ["completed"] * 3, finished
    # The running job was not dispatched again: its replica committed the first attempt.
    assert finished[0]["attempt"] == 1
    assert all(j["attempt"] == 1 for j in finished)
    status = service.get("/api/v1/system/scheduler-status").json()
    assert status["scheduler"]["running"] is True
    stuck = service.get("/api/v1/system/jobs/history", params={"status": "processing"}).json()
    assert stuck["pagination"]["total"] == 0


def _replica_actor(deployment: str) -> Any:
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == "serve" and f"#{deployment}#" in entry["name"]:
            return ray.get_actor(entry["name"], namespace="serve")
    raise AssertionError(f"no replica of {deployment}")


def test_a_dead_replica_means_one_retry(service: Service, slow_mesh_id: str) -> None:
    job_id = submit(service, slow_mesh_id, parts=10)
    assert wait_status(service, job_id, "processing")["status"] == "processing"
    time.sleep(1.0)
    ray.kill(_replica_actor("sleep_mesh_segmentation"), no_restart=True)
    job = service.wait(job_id, 240)
    assert job["status"] == "completed", job
    assert job["attempt"] == 2  # dispatched once more, completed once
