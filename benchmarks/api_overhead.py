"""API overhead of the Serve ingress, side by side with plain uvicorn, in one run.

Starts a local Ray head (free port, never 6379) with the default application of
`serve_config.yaml` on a temporary data directory (SQLite + local storage), completes one
retopology job, then drives with wrk:

  (a) Serve    GET  /health
  (b) Serve    GET  /api/v1/system/jobs/{id}          (a completed job)
  (c) Serve    POST /api/v1/mesh-retopology/retopologize-mesh   (each 200 is a real job)
  (d) uvicorn  GET  /health and GET /api/v1/system/jobs/{id}: the same FastAPI app on the
      same database and storage, one uvicorn process, no job manager

and prints one table with req/s, p50, p99 and the ratios b/a and b/d. Everything it starts
(Serve, the Ray head, uvicorn, the temporary directory) is removed on exit, Ctrl-C included.

    .venv/bin/python benchmarks/api_overhead.py [--duration 10] [--connections 20] ...
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_ASSET = ROOT.parent / "shared" / "assets" / "cow.obj"
SETTINGS_ENV = "MESHFORGE_BENCH_SETTINGS"
JOB_ROUTE = "/api/v1/system/jobs/{}"
SUBMIT_ROUTE = "/api/v1/mesh-retopology/retopologize-mesh"


def plain_app() -> Any:
    """uvicorn factory: the same FastAPI app on the benchmark's database and storage, without
    a job manager (settings come as JSON in MESHFORGE_BENCH_SETTINGS)."""
    from app.context import AppContext
    from app.main import create_app
    from meshforge.settings import Settings

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    return create_app(lambda: AppContext.build(settings, settings.app_name, with_job_manager=False))


# --- wrk ------------------------------------------------------------------------------


@dataclass
class WrkResult:
    scenario: str
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors (connect, read, write, timeout)
    rps: float
    p50_ms: float
    p99_ms: float


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNIT_MS[unit]


def parse_wrk(scenario: str, out: str) -> WrkResult:
    """Requests/sec, p50 and p99 (from the --latency distribution) and errors of a wrk run."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"wrk output has no {pattern!r}:\n{out}")
        return match

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return WrkResult(
        scenario=scenario,
        requests=int(find(r"(\d+) requests in")[1]),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
        rps=float(find(r"Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_ms(find(r"\s50%\s+(\S+)")[1]),
        p99_ms=_ms(find(r"\s99%\s+(\S+)")[1]),
    )


def run_wrk(opts: argparse.Namespace, url: str, duration: float, script: Path | None = None) -> str:
    cmd = ["wrk", f"-t{opts.threads}", f"-c{opts.connections}", f"-d{duration:g}s"]
    cmd += ["--latency", "--timeout", "10s"] + (["-s", str(script)] if script else [])
    done = subprocess.run(cmd + [url], capture_output=True, text=True, check=True)
    return done.stdout


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("wrk is not installed: install the Debian package `wrk` (apt-get install wrk)")
    print("Installing wrk (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    if not shutil.which("wrk"):
        sys.exit("wrk is still missing after apt-get install")


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def catch_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the teardown runs. Called again after `ray.init`,
    whose native crash handler would otherwise abort the process and leave the head running."""
    signal.signal(signal.SIGTERM, _interrupted)


# --- the two servers ------------------------------------------------------------------


def app_args(data_dir: Path) -> dict[str, Any]:
    """The default application's args (serve_config.yaml) on a private data directory."""
    import yaml

    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = next(a for a in config["applications"] if a["name"] == "meshforge")
    return {**app.get("args", {}), "data_dir": str(data_dir), "storage_backend": "local"}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet: connection refused, 503 while starting
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def start_serve(stack: ExitStack, args: dict[str, Any], tmp: Path) -> str:
    """Ray head + Serve application; returns the HTTP base URL."""
    from meshforge.local_cluster import free_port, ray_env, start_head, stop_process

    os.environ.update({k: v for k, v in ray_env().items() if k.startswith("RAY_")})
    import ray
    import requests
    from ray import serve

    from app.serve_app import build_app

    port, http_port = free_port(), free_port()
    head = start_head(port, num_cpus=max(os.cpu_count() or 2, 4), log_file=tmp / "ray.log")
    stack.callback(stop_process, head)
    ray.init(address=f"127.0.0.1:{port}", namespace="meshforge", log_to_driver=False)
    catch_sigterm()
    stack.callback(ray.shutdown)
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    stack.callback(serve.shutdown)
    serve.run(build_app(args), name=args.get("app_name", "meshforge"), route_prefix="/")
    url = f"http://127.0.0.1:{http_port}"
    status = url + "/api/v1/system/scheduler-status"
    wait_until(
        lambda: requests.get(status, timeout=5).json()["scheduler"]["running"] is True,
        120,
        "job manager",
    )
    return url


def start_uvicorn(stack: ExitStack, args: dict[str, Any], tmp: Path) -> str:
    """The same FastAPI app under one plain uvicorn process; returns its base URL."""
    import requests

    from meshforge.local_cluster import free_port, stop_process

    port = free_port()
    env = {**os.environ, SETTINGS_ENV: json.dumps(args)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api_overhead:plain_app"]
    cmd += ["--app-dir", str(Path(__file__).resolve().parent), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    log = (tmp / "uvicorn.log").open("ab")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.callback(stop_process, proc, signal.SIGTERM, 20)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(url + "/health", timeout=5).ok, 60, "uvicorn")
    return url


# --- jobs -----------------------------------------------------------------------------


def completed_job(url: str, asset: Path) -> tuple[str, str]:
    """Upload the asset and run one retopology job to completion; (file_id, job_id)."""
    import requests

    with asset.open("rb") as fh:
        up = requests.post(f"{url}/api/v1/file-upload/mesh", files={"file": fh}, timeout=60)
    up.raise_for_status()
    file_id = up.json()["file_id"]
    body = {"mesh_file_id": file_id, "target_vertex_count": 1000, "output_format": "obj"}
    sub = requests.post(url + SUBMIT_ROUTE, json=body, timeout=60)
    sub.raise_for_status()
    job_id = sub.json()["job_id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = requests.get(url + JOB_ROUTE.format(job_id), timeout=30).json()
        if job["status"] == "completed":
            return file_id, job_id
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the setup job ended {job['status']}: {job}")
        time.sleep(0.3)
    raise TimeoutError(f"the setup job {job_id} did not complete in 300s")


def cancel_open_jobs(url: str, engine: Any) -> int:
    """Cancel the jobs (c) left queued or processing, so they stop using the CPU."""
    import requests

    from persistence.jobs import jobs_in
    from persistence.models import JobStatus

    open_ids = [j.id for j in jobs_in(engine, [JobStatus.QUEUED, JobStatus.PROCESSING])]

    def cancel(job_id: str) -> bool:
        try:
            cancel_url = url + JOB_ROUTE.format(job_id) + "/cancel"
            return requests.post(cancel_url, timeout=30).ok
        except requests.RequestException:
            return False

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(cancel, open_ids))


# --- report ---------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}"


def print_table(rows: dict[str, WrkResult], opts: argparse.Namespace, notes: list[str]) -> None:
    a, b = rows["a"], rows["b"]
    d_health, d_job = rows["d_health"], rows["d_job"]
    head = f"{'scenario':<60} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8}"
    print(f"\n{head} {'p99 ms':>8}")
    print("-" * len(head + " p99 ms "))
    for r in rows.values():
        print(
            f"{r.scenario:<60} {r.requests:>9} {r.errors:>7} {r.rps:>9.1f} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
        )
    print("-" * len(head + " p99 ms "))
    for label, x, y in (
        ("ratio b/a  (jobs/{id} vs /health, Serve)", b, a),
        ("ratio b/d  (jobs/{id}, Serve vs uvicorn)", b, d_job),
        ("ratio a/d  (/health, Serve vs uvicorn)", a, d_health),
    ):
        print(
            f"{label:<60} {'':>9} {'':>7} {x.rps / y.rps:>9.3f} "
            f"{x.p50_ms / y.p50_ms:>8.2f} {x.p99_ms / y.p99_ms:>8.2f}"
        )
    print(
        f"\nwrk: {opts.threads} threads, {opts.connections} connections, "
        f"{opts.duration:g} s per GET scenario, {opts.submit_duration:g} s for (c); "
        f"machine: {machine()}"
    )
    for note in notes:
        print(note)


# --- main -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10, help="seconds per GET scenario")
    p.add_argument("--submit-duration", type=float, default=5, help="seconds for (c)")
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=float, default=2, help="unrecorded seconds before GETs")
    p.add_argument("--asset", type=Path, default=DEFAULT_ASSET, help="mesh for the jobs")
    return p.parse_args()


def measure(opts: argparse.Namespace, tmp: Path, stack: ExitStack) -> None:
    from meshforge.settings import Settings
    from persistence.db import make_engine
    from persistence.jobs import count_by_status

    args = app_args(tmp / "data")
    t0 = time.monotonic()
    serve_url = start_serve(stack, args, tmp)
    file_id, job_id = completed_job(serve_url, opts.asset)
    uvicorn_url = start_uvicorn(stack, args, tmp)
    print(f"Serve, uvicorn and one completed job ready in {time.monotonic() - t0:.0f}s")
    load_start = os.getloadavg()[0]

    def get(key: str, label: str, url: str) -> None:
        if opts.warmup > 0:
            run_wrk(opts, url, opts.warmup)
        print(f"  {label} ...", flush=True)
        rows[key] = parse_wrk(label, run_wrk(opts, url, opts.duration))

    rows: dict[str, WrkResult] = {}
    job_path = JOB_ROUTE.format(job_id)
    get("a", "(a) Serve    GET  /health", serve_url + "/health")
    get("b", "(b) Serve    GET  /api/v1/system/jobs/{id}", serve_url + job_path)
    get("d_health", "(d) uvicorn  GET  /health", uvicorn_url + "/health")
    get("d_job", "(d) uvicorn  GET  /api/v1/system/jobs/{id}", uvicorn_url + job_path)

    # (c) last: every accepted submission is a real job that keeps the CPUs busy afterwards.
    engine = make_engine(Settings(**args).resolved_database_url())
    before = sum(count_by_status(engine).values())
    lua = tmp / "submit.lua"
    body = {"mesh_file_id": file_id, "target_vertex_count": 1000, "output_format": "obj"}
    lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    label = "(c) Serve    POST /api/v1/mesh-retopology/retopologize-mesh"
    print(f"  {label} ...", flush=True)
    out = run_wrk(opts, serve_url + SUBMIT_ROUTE, opts.submit_duration, lua)
    rows["c"] = parse_wrk(label, out)
    created = sum(count_by_status(engine).values()) - before
    done = count_by_status(engine)["completed"] - 1
    cancelled = cancel_open_jobs(serve_url, engine)
    rows = {k: rows[k] for k in ("a", "b", "c", "d_health", "d_job")}
    print_table(
        rows,
        opts,
        [
            f"(c) created {created} real jobs ({done} completed during the run, "
            f"{cancelled} cancelled afterwards)",
            f"load average (1 min) before the scenarios: {load_start:.2f}, "
            f"after: {os.getloadavg()[0]:.2f} (the machine is shared; compare ratios)",
        ],
    )


def main() -> int:
    opts = parse_args()
    if not opts.asset.is_file():
        sys.exit(f"asset not found: {opts.asset}")
    ensure_wrk()
    catch_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="meshforge-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        try:
            measure(opts, tmp, stack)
        except KeyboardInterrupt:
            print("\nInterrupted; cleaning up...", file=sys.stderr)
            return 130
        except subprocess.CalledProcessError as exc:
            print(f"{exc}\n{exc.stdout}\n{exc.stderr}", file=sys.stderr)
            return 1
        finally:
            # A second Ctrl-C must not cut the teardown (the stack's callbacks) short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("Stopping uvicorn, Serve and the Ray head...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
