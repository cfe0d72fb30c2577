"""Pytest plugin: a real S3 server (moto's standalone server) in a subprocess.

Load it with `pytest_plugins = ["tests.fixtures_s3"]`. The server is started once per
session and only when a test asks for `s3_server`; it speaks S3 over HTTP on a free local
port and accepts any credentials.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def _free_port() -> int:
    """A port the kernel just handed out (free now; the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """True once the server answers HTTP at all (any status); no proxies involved."""
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/moto-api/")
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def _wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll until the server answers; fail with its log if it dies or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with {proc.returncode}:\n{log.read_text()}")
        if _answers(port):
            return
        time.sleep(0.1)
    _stop(proc)
    pytest.fail(f"moto server did not answer within {START_TIMEOUT_S}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Connection settings of a running moto S3 server: endpoint, access_key, secret_key."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(proc, port, log)
        yield {"endpoint": f"{HOST}:{port}", "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    finally:
        _stop(proc)
