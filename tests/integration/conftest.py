"""One real Ray cluster per test session, with two Serve applications on it.

`service`: auth off, on PostgreSQL and S3, at `/`. `auth_service`: auth on
(`user_auth_enabled`), on a second PostgreSQL database and the local object store, at the
route prefix `/auth` of the same Serve instance. The default profile (SQLite) is exercised
end to end by tests/e2e, which starts the service with the README's command.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    {
        "model_id": "xatlas_uv_unwrapping",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "fairing_part_completion",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "heat_auto_rig",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "silhouette_image_to_raw_mesh",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "silhouette_image_to_textured_mesh",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "projection_image_mesh_painting",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "catalogue_text_to_raw_mesh",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "catalogue_text_to_textured_mesh",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    {
        "model_id": "catalogue_text_mesh_painting",
        "num_replicas": 1,
        "num_cpus": 0.25,
        "max_concurrent_jobs": 1,
        "default": True,
    },
    # A model that takes a few seconds, so tests can interrupt jobs while they run.
    {
        "model_id": "sleep_mesh_segmentation",
        "num_replicas": 1,
        "num_cpus": 0.3,
        "max_concurrent_jobs": 1,
        "options": {"seconds": 4.0},
    },
]


@dataclass
class Service:
    url: str
    settings: Settings
    args: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def as_token(self, token: str) -> Service:
        """The same service, seen by the holder of `token` (every request carries it)."""
        return dataclasses.replace(self, headers={"Authorization": f"Bearer {token}"})

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, timeout=60, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self._request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self._request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self._request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self._request("DELETE", path, **kw)

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
    # Logical CPUs for the three applications' replicas (about 6.3 CPUs reserved in all;
    # the work itself is light), and two logical GPUs: the simulated inventory of the
    # `gpu_service` app stands on them.
    head = start_head(port, num_cpus=8, num_gpus=2, log_file=tmp / "ray.log")
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


# The auth app needs few models: fast jobs (retopology), slow ones (segmenting the bunny
# takes seconds, for the active-jobs cap) and one with an image input (`image_path`).
AUTH_MODEL_IDS = (
    "quadric_retopology",
    "spectral_mesh_segmentation",
    "silhouette_image_to_raw_mesh",
)
AUTH_MODELS = [{**m, "max_concurrent_jobs": 1} for m in MODELS if m["model_id"] in AUTH_MODEL_IDS]
ADMIN = {"username": "root", "email": "root@example.com", "password": "root-password-1"}


def client_address() -> dict[str, str]:
    """A fresh client address for the login throttle: uvicorn in the Serve proxy takes
    X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS), so each test gets its own
    per-address bucket and tests do not throttle each other."""
    return {"X-Forwarded-For": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7"}


@dataclass
class AuthService(Service):
    """The auth-on application; `admin` is a Service carrying the first admin's token."""

    admin: Service | None = None

    def login(self, username: str, password: str) -> requests.Response:
        return self.post(
            "/api/v1/users/login",
            json={"username": username, "password": password},
            headers=client_address(),
        )

    def new_user(self, role: str = "user") -> tuple[Service, dict[str, Any]]:
        """Register a user through the admin (registration is closed) and log in."""
        assert self.admin is not None
        name = f"u{secrets.token_hex(4)}"
        creds = {"username": name, "email": f"{name}@example.com", "password": f"pw-{name}-1"}
        resp = self.admin.post("/api/v1/users/register", json={**creds, "role": role})
        assert resp.status_code == 200, resp.text
        login = self.login(name, creds["password"])
        assert login.status_code == 200, login.text
        user = {**creds, **resp.json()["user"], "token": login.json()["token"]}
        return self.as_token(login.json()["token"]), user


@pytest.fixture(scope="session")
def auth_service(
    service: Service, tmp_path_factory: pytest.TempPathFactory, pg_auth_url: str
) -> Iterator[AuthService]:
    """A second application (auth on) on the session's Ray cluster and Serve instance, under
    the route prefix `/auth`; its first admin is made with `meshforge create-admin`."""
    from ray import serve

    from app.serve_app import build_app

    tmp = tmp_path_factory.mktemp("auth_service")
    allowed = tmp / "allowed"
    allowed.mkdir()
    args = {
        "app_name": "meshforge_auth",
        "job_manager_name": f"jm_auth_{secrets.token_hex(3)}",
        "data_dir": str(tmp / "data"),
        "database_url": pg_auth_url,
        "allowed_input_dirs": [str(allowed)],
        "user_auth_enabled": True,
        "secret_key": secrets.token_urlsafe(48),
        "image_max_resolution": 512,
        "mesh_max_size_mb": 20,
        "image_max_size_mb": 5,
        "json_body_max_mb": 40,
        "job_submission_burst": 20,
        "job_submissions_per_minute": 60,
        "max_active_jobs_per_user": 2,
        "login_attempts_per_minute": 8,
        "login_attempts_per_minute_per_address": 10,
        "sweep_interval_s": 1.0,
        "heartbeat_interval_s": 1.0,
        "models": AUTH_MODELS,
    }
    serve.run(build_app(args), name="meshforge_auth", route_prefix="/auth")
    settings = Settings(**args)
    svc = AuthService(f"{service.url}/auth", settings, args)
    done = subprocess.run(
        [sys.executable, "-m", "meshforge.cli", "create-admin", "--password-stdin"]
        + ["--username", ADMIN["username"], "--email", ADMIN["email"]]
        + ["--database-url", settings.resolved_database_url()],
        input=ADMIN["password"] + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    login = svc.login(ADMIN["username"], ADMIN["password"])
    assert login.status_code == 200, login.text
    svc.admin = svc.as_token(login.json()["token"])
    deadline = time.monotonic() + 60
    while svc.get("/api/v1/system/scheduler-status").json()["scheduler"]["running"] is False:
        assert time.monotonic() < deadline, "job manager of the auth app did not start"
        time.sleep(0.5)
    try:
        yield svc
    finally:
        serve.delete("meshforge_auth")


# The VRAM scheduler's app: simulated GPU models on two simulated 24 GiB GPUs. The GPU
# fractions make Ray put `large` and `medium` (which cannot be resident together) on one
# GPU and `small` on the other, whatever order the replicas start in: 0.5 + 0.5 fits one
# GPU, 0.6 fits beside neither.
GPU_MODELS = [
    {
        "model_id": f"gpu_sim_{size}_mesh_segmentation",
        "num_replicas": 1,
        "num_cpus": 0.2,
        "num_gpus": fraction,
        "options": {"seconds": seconds, "load_seconds": 1.0},
    }
    for size, fraction, seconds in (
        ("large", 0.5, 2.0),
        ("medium", 0.5, 2.0),
        ("small", 0.6, 1.0),
        ("huge", 0.05, 1.0),
    )
] + [
    # A real GPU adapter whose upstream package and weights are absent here: its replica
    # must start, say why it cannot load, and the model must not be offered.
    {
        "model_id": "partfield_mesh_segmentation",
        "num_replicas": 1,
        "num_cpus": 0.1,
        "num_gpus": 0.05,
    }
]


@pytest.fixture(scope="session")
def gpu_service(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A third application on the session's cluster, under `/gpu`, scheduling simulated
    GPU models on the head's two logical GPUs (`gpu_inventory: 2x24576`)."""
    from ray import serve

    from app.serve_app import build_app

    tmp = tmp_path_factory.mktemp("gpu_service")
    args = {
        "app_name": "meshforge_gpu",
        "job_manager_name": f"jm_gpu_{secrets.token_hex(3)}",
        "data_dir": str(tmp / "data"),
        "gpu_inventory": "2x24576",
        "gpu_poll_interval_s": 2.0,
        "heartbeat_interval_s": 1.0,
        "job_orphan_timeout_s": 20.0,
        "models": GPU_MODELS,
    }
    serve.run(build_app(args), name="meshforge_gpu", route_prefix="/gpu")
    svc = Service(f"{service.url}/gpu", Settings(**args), args)
    deadline = time.monotonic() + 90
    while True:
        sched = svc.get("/api/v1/system/scheduler-status").json()["scheduler"]
        placed = [m["placed_on"] for m in sched["models"].values()]
        if len(sched["gpu_status"]) == 2 and all(placed):
            break
        assert time.monotonic() < deadline, f"GPU replicas not placed: {sched}"
        time.sleep(0.5)
    try:
        yield svc
    finally:
        serve.delete("meshforge_gpu")
