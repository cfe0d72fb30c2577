"""`meshforge start | stop | status | create-admin`: run the service on a local Ray head.

`start` picks free ports for Ray (never 6379), starts a Ray head, deploys
`serve_config.yaml` with `serve run`, prints the URL and stays in the foreground;
Ctrl-C (or `meshforge stop`) tears the application and the Ray head down.
`create-admin` adds the first admin account (user_auth_enabled) to the database.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from meshforge.local_cluster import free_port, ray_env, start_head, stop_process, wait_port

RUN_DIR = Path(os.environ.get("MESHFORGE_RUN_DIR", ".meshforge"))
STATE = RUN_DIR / "run.json"


def _serve_cli() -> str:
    local = Path(sys.executable).with_name("serve")
    return str(local) if local.exists() else "serve"


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve run exited with {proc.returncode}; see {RUN_DIR}/serve.log")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the service did not become healthy in {timeout:.0f}s")


def _run_config(path: Path, port: int) -> Path:
    """The config as deployed: the chosen HTTP port replaces the file's."""
    import yaml

    config = yaml.safe_load(path.read_text())
    config.setdefault("http_options", {})["port"] = port
    target = RUN_DIR / "serve_config.run.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def start(args: argparse.Namespace) -> int:
    RUN_DIR.mkdir(exist_ok=True)
    data_dir = Path(os.environ.get("MESHFORGE_DATA_DIR", "data")).resolve()
    extra = {"MESHFORGE_DATA_DIR": str(data_dir), "MESHFORGE_PORT": str(args.port)}
    env = ray_env(extra)
    os.environ.update(env)
    gcs_port = free_port()
    num_cpus = args.num_cpus or max(os.cpu_count() or 2, 4)
    print(f"Starting Ray head on port {gcs_port} ({num_cpus} CPUs, {args.num_gpus} GPUs)...")
    head = start_head(
        gcs_port,
        num_cpus,
        args.num_gpus,
        dashboard=args.dashboard,
        log_file=RUN_DIR / "ray.log",
        env=env,
    )
    config = _run_config(args.config, args.port)
    serve_log = (RUN_DIR / "serve.log").open("ab")
    serve_proc = subprocess.Popen(
        [_serve_cli(), "run", str(config), f"--address=127.0.0.1:{gcs_port}"],
        env=env,
        stdout=serve_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    STATE.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "head_pid": head.pid,
                "serve_pid": serve_proc.pid,
                "port": args.port,
                "ray_port": gcs_port,
            }
        )
    )
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    url = f"http://localhost:{args.port}"
    try:
        wait_port(args.port, 180, serve_proc)
        _wait_healthy(url, serve_proc, 180)
        print(f"MeshForge is running at {url}  (API docs: {url}/docs)")
        print("Press Ctrl-C to stop.", flush=True)
        while not stopping and serve_proc.poll() is None and head.poll() is None:
            time.sleep(0.5)
        return 0 if stopping else 1
    except Exception as exc:
        print(f"MeshForge failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        print("Stopping MeshForge...", flush=True)
        stop_process(serve_proc, signal.SIGINT, timeout=60)
        stop_process(head, signal.SIGTERM, timeout=60)
        STATE.unlink(missing_ok=True)
        print("Stopped.", flush=True)


def _state() -> dict[str, int] | None:
    try:
        return json.loads(STATE.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def stop(_: argparse.Namespace) -> int:
    state = _state()
    if state is None:
        print("MeshForge is not running (no .meshforge/run.json here).")
        return 0
    try:
        os.kill(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        STATE.unlink(missing_ok=True)
        print("MeshForge was not running; cleaned up its state file.")
        return 0
    for _attempt in range(240):
        if not STATE.exists():
            print("Stopped.")
            return 0
        time.sleep(0.5)
    print("MeshForge did not stop in time", file=sys.stderr)
    return 1


def status(_: argparse.Namespace) -> int:
    state = _state()
    if state is None:
        print("MeshForge is not running.")
        return 3
    url = f"http://localhost:{state['port']}"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            print(f"MeshForge is running at {url}: {resp.read().decode()}")
            return 0
    except OSError as exc:
        print(f"MeshForge processes exist but {url}/health does not answer: {exc}")
        return 1


def _database_url(args: argparse.Namespace) -> str:
    """`--database-url`, else the `database_url`/`data_dir` of `--config`'s first
    application, else the MESHFORGE_* environment (what `meshforge start` would use)."""
    if args.database_url:
        return str(args.database_url)
    from meshforge.settings import Settings

    overrides: dict[str, object] = {}
    if args.config is not None:
        import yaml

        apps = (yaml.safe_load(args.config.read_text()) or {}).get("applications") or [{}]
        app_args = apps[0].get("args") or {}
        overrides = {k: app_args[k] for k in ("database_url", "data_dir") if k in app_args}
    return Settings(**overrides).resolved_database_url()  # type: ignore[arg-type]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the new admin: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ValueError("the passwords do not match")
    return first


def create_admin(args: argparse.Namespace) -> int:
    """Create an admin account: the first one cannot come from the API, where only admins
    may create users while registration is closed."""
    from pydantic import ValidationError

    from app.security import hash_password
    from meshforge.errors import Conflict
    from persistence import users as user_db
    from persistence.db import make_engine, migrate
    from persistence.models import Role, User, UserRegister

    try:
        password = _read_password(args.password_stdin)
        body = UserRegister(
            username=args.username, email=args.email, password=password, role=Role.ADMIN
        )
    except ValidationError as exc:  # never echo the input: it holds the password
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"create-admin: {problems}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"create-admin: {exc}", file=sys.stderr)
        return 2
    url = _database_url(args)
    migrate(url)
    engine = make_engine(url)
    try:
        user = user_db.create_user(
            engine,
            user=User(
                username=body.username,
                email=body.email,
                password_hash=hash_password(body.password),
                role=Role.ADMIN.value,
            ),
        )
    except Conflict as exc:
        print(f"create-admin: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Created admin {user.username} ({user.id}); log in with POST /api/v1/users/login.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="run the service in the foreground")
    p_start.add_argument("--config", type=Path, default=Path("serve_config.yaml"))
    p_start.add_argument("--port", type=int, default=int(os.environ.get("MESHFORGE_PORT", 7842)))
    p_start.add_argument("--num-cpus", type=int, default=0, help="logical CPUs for Ray")
    p_start.add_argument("--num-gpus", type=int, default=0, help="GPUs for Ray (logical)")
    p_start.add_argument("--dashboard", action="store_true", help="start the Ray dashboard")
    p_start.set_defaults(func=start)
    sub.add_parser("stop", help="stop a service started here").set_defaults(func=stop)
    sub.add_parser("status", help="is the service up?").set_defaults(func=status)
    p_admin = sub.add_parser("create-admin", help="add an admin account to the database")
    p_admin.add_argument("--username", required=True)
    p_admin.add_argument("--email", required=True)
    p_admin.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin, not a prompt"
    )
    p_admin.add_argument("--database-url", help="SQLAlchemy URL (default: as the service)")
    p_admin.add_argument("--config", type=Path, help="take database_url/data_dir from this file")
    p_admin.set_defaults(func=create_admin)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
