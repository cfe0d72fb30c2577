"""Starting a local Ray head for the service and the tests, on a free port (never 6379)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RESERVED_PORTS = {6379, 7842, 8265}


def free_port(avoid: set[int] = RESERVED_PORTS) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def ray_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Ray process we start: consistent auth mode, no usage stats."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("RAY_worker_niceness", "0")
    env.update(extra or {})
    return env


def _ray_cli() -> str:
    local = Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open in {timeout:.0f}s")


def start_head(
    port: int,
    num_cpus: int,
    num_gpus: int = 0,
    dashboard: bool = False,
    log_file: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`ray start --head --block` in its own session; terminating it stops what it started."""
    cmd = [
        _ray_cli(),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        f"--num-gpus={num_gpus}",
        "--disable-usage-stats",
        f"--include-dashboard={'true' if dashboard else 'false'}",
        f"--ray-client-server-port={free_port()}",
    ]
    out = log_file.open("ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(
        cmd, env=env or ray_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_port(port, 90, proc)
    return proc


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60
) -> None:
    """Signal a process group we started and wait; kill it if it does not go."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
