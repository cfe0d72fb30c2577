"""One real Ray cluster and Serve application per test session, on PostgreSQL and S3.

The default profile (SQLite, local storage) is exercised end to end by tests/e2e, which
starts the service with the README's command; here the other backends run for real.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from meshforge.local_cluster import free_port, ray_env, start_head, stop_process
from meshforge.settings import Settings

MODELS = [
    {
        "model_id": "quadric_retopology",
        "num_replicas": 1,
        "num_cpus": 0.5,
        "max_concurrent_jobs": 2,
        "default": True,
    },
    {
        "model_id": "spectral_mesh_segmentation",
        "num_replicas": 1,
        "num_cpus": 0.5,
        "max_concurrent_jobs": 1,
        "default": True,
    },
]


@dataclass
class Service:
    url: str
    settings: Settings
    args: dict[str, Any]

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.url + path, timeout=60, **kw)

    def upload(self, kind: str, path: Path, name: str | None = None) -> dict[str, Any]:
        with path.open("rb") as fh:
            resp = self.post(f"/api/v1/file-upload/{kind}", files={"file": (name or path.name, fh)})
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def wait(
        self,
        job_id: str,
        timeout: float = 120,
        until: tuple[str, ...] = ("completed", "failed", "cancelled"),
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(f"/api/v1/system/jobs/{job_id}").json()
            if body["status"] in until:
                return body  # type: ignore[no-any-return]
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still {body['status']} after {timeout}s: {body}")


@pytest.fixture(scope="session")
def service(
    tmp_path_factory: pytest.TempPathFactory, pg_url: str, s3_server: dict[str, str]
) -> Iterator[Service]:
    os.environ.update({k: v for k, v in ray_env().items() if k.startswith("RAY_")})
    import ray
    from ray import serve

    from app.serve_app import build_app

    tmp = tmp_path_factory.mktemp("service")
    allowed = tmp / "allowed"
    allowed.mkdir()
    args = {
        "data_dir": str(tmp / "data"),
        "database_url": pg_url,
        "storage_backend": "s3",
        "s3_endpoint": s3_server["endpoint"],
        "s3_access_key": s3_server["access_key"],
        "s3_secret_key": s3_server["secret_key"],
        "s3_bucket": f"it-{secrets.token_hex(4)}",
        "allowed_input_dirs": [str(allowed)],
        "mesh_max_size_mb": 20,
        "image_max_size_mb": 5,
        "json_body_max_mb": 40,
        "job_orphan_timeout_s": 8.0,
        "heartbeat_interval_s": 1.0,
        "sweep_interval_s": 1.0,
        "job_manager_name": f"jm_{secrets.token_hex(3)}",
        "models": MODELS,
    }
    port, http_port = free_port(), free_port()
    head = start_head(port, num_cpus=6, log_file=tmp / "ray.log")
    try:
        ray.init(address=f"127.0.0.1:{port}", namespace="meshforge", log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": http_port})
        serve.run(build_app(args), name="meshforge", route_prefix="/")
        svc = Service(f"http://127.0.0.1:{http_port}", Settings(**args), args)
        deadline = time.monotonic() + 60
        while svc.get("/api/v1/system/scheduler-status").json()["scheduler"]["running"] is False:
            assert time.monotonic() < deadline, "job manager did not start"
            time.sleep(0.5)
        yield svc
    finally:
        try:
            serve.shutdown()
            ray.shutdown()
        finally:
            stop_process(head)


@pytest.fixture()
def job_manager(service: Service) -> Any:
    import ray

    return ray.get_actor(service.settings.job_manager_name, namespace="meshforge")
