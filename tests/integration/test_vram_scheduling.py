"""The VRAM scheduler on a real Ray cluster with two simulated 24 GiB GPUs.

`large` (16 GiB) and `medium` (12 GiB) sit on one GPU and cannot be resident together:
alternating jobs make the job manager unload one and load the other through the
replicas' hooks, never both at once, while `small` (4 GiB, on the other GPU) keeps
serving. `huge` (40 GiB) fits on no GPU and is refused at submission.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.integration.conftest import Service
from tests.integration.test_api import assert_error

SEGMENT = "/api/v1/mesh-segmentation/segment-mesh"
LARGE, MEDIUM, SMALL, HUGE = (
    f"gpu_sim_{size}_mesh_segmentation" for size in ("large", "medium", "small", "huge")
)
MARGIN_MIB = 512


@pytest.fixture(scope="module")
def mesh_id(gpu_service: Service, assets_dir: Path) -> str:
    return gpu_service.upload("mesh", assets_dir / "suzanne.obj")["file_id"]  # type: ignore[no-any-return]


def submit(svc: Service, mesh_id: str, model: str) -> str:
    body = {"mesh_file_id": mesh_id, "num_parts": 3, "model_preference": model}
    resp = svc.post(SEGMENT, json=body)
    assert resp.status_code == 200, resp.text
    assert model in resp.json()["message"] or "queued" in resp.json()["message"]
    return resp.json()["job_id"]  # type: ignore[no-any-return]


def scheduler(svc: Service) -> dict[str, Any]:
    resp = svc.get("/api/v1/system/scheduler-status")
    assert resp.status_code == 200, resp.text
    return resp.json()["scheduler"]  # type: ignore[no-any-return]


class Watcher(threading.Thread):
    """Polls scheduler-status while jobs swap and records every GPU's ledger."""

    def __init__(self, svc: Service) -> None:
        super().__init__(daemon=True)
        self.svc = svc
        self.stop = threading.Event()
        self.samples: list[list[dict[str, Any]]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append(scheduler(self.svc)["gpu_status"])
            except Exception as exc:  # recorded, asserted on by the test
                self.errors.append(repr(exc))
            time.sleep(0.15)


def _resident(gpu: dict[str, Any]) -> set[str]:
    return {m["model_id"] for m in gpu["models"]}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_placement_follows_ray_and_the_inventory_is_simulated(gpu_service: Service) -> None:
    sched = scheduler(gpu_service)
    gpus = sched["gpu_status"]
    assert [g["memory_total"] for g in gpus] == [24576, 24576]
    assert all(g["margin"] == MARGIN_MIB for g in gpus)
    where = {m: sched["models"][m]["placed_on"] for m in (LARGE, MEDIUM, SMALL)}
    assert where[LARGE] == where[MEDIUM] != where[SMALL], where
    # Nothing is loaded before a job asks for it: the weights wait for the scheduler.
    assert all(sched["models"][m]["status"] == "unloaded" for m in (LARGE, MEDIUM, SMALL))


def test_a_model_no_gpu_can_hold_is_refused_at_submission(
    gpu_service: Service, mesh_id: str
) -> None:
    def total() -> int:
        history = gpu_service.get("/api/v1/system/jobs/history").json()
        return int(history["pagination"]["total"])

    before = total()
    body = {"mesh_file_id": mesh_id, "model_preference": HUGE}
    resp = gpu_service.post(SEGMENT, json=body)
    assert_error(resp, 507, "INSUFFICIENT_VRAM")
    detail = resp.json()["detail"]
    assert detail["required_mb"] == 40960 and detail["largest_gpu_mb"] == 24576 - MARGIN_MIB
    assert total() == before  # nothing was created


def test_alternating_jobs_swap_models_never_co_resident(gpu_service: Service, mesh_id: str) -> None:
    before = scheduler(gpu_service)["counters"]
    watcher = Watcher(gpu_service)
    watcher.start()
    try:
        small = [submit(gpu_service, mesh_id, SMALL) for _ in range(4)]
        big, done_big, reasons = [], [], set()
        for model in (LARGE, MEDIUM, LARGE, MEDIUM):  # strictly alternating: a swap each time
            big.append(submit(gpu_service, mesh_id, model))
            while (job := gpu_service.get(f"/api/v1/system/jobs/{big[-1]}").json())[
                "status"
            ] == "queued":
                assert job["queue_position"] == 0
                reasons.add(job["waiting_reason"])
                time.sleep(0.1)
            done_big.append(gpu_service.wait(big[-1], 240))
        done_small = [gpu_service.wait(j, 240) for j in small]
    finally:
        watcher.stop.set()
        watcher.join(10)
    finished = done_big + done_small
    assert [j["status"] for j in finished] == ["completed"] * len(finished), finished
    assert not watcher.errors, watcher.errors[:3]
    assert len(watcher.samples) > 10

    seen: dict[str, set[str]] = {}
    for sample in watcher.samples:
        for gpu in sample:
            resident = _resident(gpu)
            assert not {LARGE, MEDIUM} <= resident, f"co-resident on GPU {gpu['id']}: {gpu}"
            booked = gpu["memory_used"] + gpu["memory_reserved"]
            assert booked <= gpu["memory_total"] - gpu["margin"], gpu
            seen.setdefault(gpu["node_id"] + str(gpu["id"]), set()).update(resident)
    assert any({LARGE, MEDIUM} <= models for models in seen.values()), seen

    after = scheduler(gpu_service)["counters"]
    assert after["loads"] - before["loads"] >= 4  # large, medium, large, medium (+ small)
    # While they waited, their status said why (the model was loading, or the other one
    # was being unloaded to make room for it).
    assert reasons and reasons <= {"loading", "waiting_for_unload", "waiting_for_vram"}, reasons
    assert after["evictions"] - before["evictions"] >= 3

    # The small model ran meanwhile: its jobs finished while the big ones were swapping.
    big_start = min(_ts(j["started_at"]) for j in done_big)
    big_end = max(_ts(j["completed_at"]) for j in done_big)
    assert any(big_start < _ts(j["completed_at"]) < big_end for j in done_small), (
        done_big,
        done_small,
    )
    for job in done_big + done_small:
        info = gpu_service.get(f"/api/v1/system/jobs/{job['job_id']}/info").json()
        assert info["generation_info"]["gpu"]["index"] in (0, 1)


def _replica_actor(deployment: str) -> Any:
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == "serve" and f"meshforge_gpu#{deployment}#" in entry["name"]:
            return ray.get_actor(entry["name"], namespace="serve")
    raise AssertionError(f"no replica of {deployment}")


def test_killing_a_replica_frees_its_ledger_entry_and_retries_its_job(
    gpu_service: Service, mesh_id: str
) -> None:
    job_id = submit(gpu_service, mesh_id, SMALL)
    deadline = time.monotonic() + 60
    while gpu_service.get(f"/api/v1/system/jobs/{job_id}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    old_gpu = scheduler(gpu_service)["models"][SMALL]["placed_on"]
    before = scheduler(gpu_service)["counters"]
    ray.kill(_replica_actor(SMALL), no_restart=True)  # Serve starts a new replica

    freed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not freed:
        sched = scheduler(gpu_service)
        counters = sched["counters"]
        freed = counters.get("replicas_lost", 0) > before.get("replicas_lost", 0)
        time.sleep(0.2)
    assert freed, "the dead replica's ledger entry was not freed"

    done = gpu_service.wait(job_id, 180)
    assert done["status"] in ("completed", "failed"), done
    if done["status"] == "completed":
        assert done["attempt"] == 2
    else:
        assert "replica" in done["error"]["message"]
    sched = scheduler(gpu_service)
    assert sched["models"][SMALL]["placed_on"] is not None
    for gpu in sched["gpu_status"]:
        assert gpu["memory_used"] + gpu["memory_reserved"] <= gpu["memory_total"] - gpu["margin"]
    stuck = gpu_service.get("/api/v1/system/jobs/history", params={"status": "processing"}).json()
    assert stuck["pagination"]["total"] == 0
    assert old_gpu is not None


def test_admin_load_and_unload_by_hand(gpu_service: Service) -> None:
    resp = gpu_service.post(f"/api/v1/system/models/{MEDIUM}/load")
    assert resp.status_code in (200, 409), resp.text
    deadline = time.monotonic() + 60
    while scheduler(gpu_service)["models"][MEDIUM]["status"] != "loaded":
        if resp.status_code == 409:  # large was resident: make room by hand first
            assert gpu_service.post(f"/api/v1/system/models/{LARGE}/unload").status_code == 200
            time.sleep(2)
            resp = gpu_service.post(f"/api/v1/system/models/{MEDIUM}/load")
            assert resp.status_code == 200, resp.text
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert_error(gpu_service.post(f"/api/v1/system/models/{LARGE}/load"), 409, "API_ERROR")
    resp = gpu_service.post(f"/api/v1/system/models/{MEDIUM}/unload")
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 30
    while scheduler(gpu_service)["models"][MEDIUM]["status"] != "unloaded":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert_error(gpu_service.post("/api/v1/system/models/nope/load"), 404, "NOT_FOUND")
    assert_error(gpu_service.post("/api/v1/system/models/nope/unload"), 404, "NOT_FOUND")


def test_a_gpu_model_that_cannot_load_is_listed_with_its_reason_and_not_offered(
    gpu_service: Service, mesh_id: str
) -> None:
    model = "partfield_mesh_segmentation"
    deadline = time.monotonic() + 60
    while (body := gpu_service.get("/api/v1/system/models").json())["models"][model][
        "status"
    ] != "unavailable":
        assert time.monotonic() < deadline, body["models"][model]
        time.sleep(0.5)
    row = body["models"][model]
    assert row["reason"] and "partfield" in row["reason"].lower(), row
    assert body["unavailable_models"][model] == row["reason"]
    assert model not in body["available_models"]["mesh_segmentation"]
    status = scheduler(gpu_service)["models"][model]
    assert status["status"] == "unavailable" and status["reason"] == row["reason"]
    # Asking for it falls back to a model that can run, and says so.
    resp = gpu_service.post(
        SEGMENT, json={"mesh_file_id": mesh_id, "num_parts": 3, "model_preference": model}
    )
    assert resp.status_code == 200, resp.text
    assert "cannot load" in resp.json()["message"]
    job = gpu_service.wait(resp.json()["job_id"], 240)
    assert job["status"] == "completed" and job["model_id"] != model
