"""CPU models: the algorithm called in-process against the same job through the API, in one run.

For each CPU model of `serve_config.yaml` and each mesh size (the Stanford bunny decimated or
Loop-subdivided to ~20k, ~100k and ~300k faces, written as OBJ to a temporary directory), it
times

  in-process  the model's `run(ctx, inputs, params)` called directly in a plain worker
              process (no Ray), the model loaded and warmed up beforehand
  API         the same job through the HTTP API of a running Serve app: upload the inputs,
              submit, poll until completed, download the result

with the same params (built from the route's request model as `app.jobs.submit_job` builds
them). The text and image generation models run once, on their prompt or image. It prints
one table with both times, the ratio API/in-process and the replica's own timing of `run()`
(`generation_info.inference_time_s`), which splits the ratio into the algorithm running
slower inside the replica and the serving around it. Each cell is the median of `--repeat`
pairs measured back to back, the order alternating, so both sides see the same load.

The in-process side runs in a child process so that a run over `--timeout` can be stopped
(a thread cannot be: xatlas passes no cancellation point for tens of seconds), with
OMP_NUM_THREADS as Ray sets it in the model's replica, so both run the algorithm with the
same thread budget. A cell over `--timeout` prints "timeout" (the API job is cancelled) and
the model's larger sizes are skipped. Everything it starts (the worker, Serve, the Ray head,
the temporary directory) is removed on exit, Ctrl-C and SIGTERM included.

    .venv/bin/python benchmarks/cpu_models.py [--quick] [--sizes 20000,100000,300000]
        [--models retopology,segmentation] [--timeout 600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from api_overhead import app_args, catch_sigterm, machine, start_serve  # noqa: E402

ASSET = ROOT.parent / "shared" / "assets" / "stanford-bunny.obj"
DEFAULT_SIZES = (20_000, 100_000, 300_000)
QUICK_SIZES = (20_000,)
WARMUP_FACES = 2_000
IMAGE_SIDE = 512
LOAD_TIMEOUT_S = 300.0  # the worker's start, imports and model load (not timed)
REPEAT_UNDER_S = 60.0  # cells whose first in-process + API pair took longer run once
JOB_ROUTE = "/api/v1/system/jobs/{}"

Inputs = dict[str, Path]  # slot ("mesh", "image") -> file


# --- what each model gets ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One model: its route, request model, input slots and the body fields it is sent."""

    model_id: str
    route: str
    request: str  # class name in app.schemas
    slots: tuple[str, ...]  # "mesh" (the bunny of the row's size) and/or "image"
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_mesh(self) -> bool:
        return "mesh" in self.slots


GEN = "/api/v1/mesh-generation"
# fmt: off
CASES = (
    Case("quadric_retopology", "/api/v1/mesh-retopology/retopologize-mesh",
         "RetopologizeRequest", ("mesh",)),
    Case("spectral_mesh_segmentation", "/api/v1/mesh-segmentation/segment-mesh",
         "SegmentMeshRequest", ("mesh",), {"num_parts": 8}),
    Case("xatlas_uv_unwrapping", "/api/v1/mesh-uv-unwrapping/unwrap-mesh",
         "UnwrapMeshRequest", ("mesh",)),
    Case("fairing_part_completion", f"{GEN}/part-completion", "PartCompletionRequest",
         ("mesh",)),
    # `skin`: the bone-heat solve is the algorithm; `skeleton` (the default) skips it.
    Case("heat_auto_rig", "/api/v1/auto-rigging/generate-rig", "GenerateRigRequest",
         ("mesh",), {"rig_mode": "skin"}),
    Case("projection_image_mesh_painting", f"{GEN}/image-mesh-painting",
         "ImageMeshPaintingRequest", ("image", "mesh")),
    Case("catalogue_text_mesh_painting", f"{GEN}/text-mesh-painting",
         "TextMeshPaintingRequest", ("mesh",), {"text_prompt": "rusty metal texture"}),
    Case("catalogue_text_to_raw_mesh", f"{GEN}/text-to-raw-mesh", "TextToRawMeshRequest",
         (), {"text_prompt": "a wooden chair"}),
    Case("catalogue_text_to_textured_mesh", f"{GEN}/text-to-textured-mesh",
         "TextToTexturedMeshRequest", (),
         {"text_prompt": "A red sports car", "texture_prompt": "shiny metallic paint"}),
    Case("silhouette_image_to_raw_mesh", f"{GEN}/image-to-raw-mesh",
         "ImageToRawMeshRequest", ("image",)),
    Case("silhouette_image_to_textured_mesh", f"{GEN}/image-to-textured-mesh",
         "ImageToTexturedMeshRequest", ("image",)),
)
# fmt: on


def job_params(case: Case) -> dict[str, Any]:
    """The params the replica hands to `run()`: the request model's fields without inputs and
    routing (as `submit_job` stores them), plus `output_format` (as the replica adds it)."""
    from app import schemas
    from deployments.registry import model_spec
    from meshforge.features import FEATURES

    request = getattr(schemas, case.request).model_validate(case.body)
    feature = FEATURES[model_spec(case.model_id).feature]
    fmt = (request.output_format or feature.default_output_format).lower()
    params = request.model_dump(
        exclude=set(schemas.INPUT_FIELDS) | {"output_format", "model_preference"}
    )
    params = {k: v for k, v in params.items() if v is not None or k == "seed"}
    return {**params, "output_format": fmt}


def names_of(case: Case) -> set[str]:
    """What `--models` accepts for a case: its model id, its feature, or a word of its id."""
    from deployments.registry import model_spec

    return {case.model_id, model_spec(case.model_id).feature, *case.model_id.split("_")}


def select_cases(names: str | None) -> list[Case]:
    """Cases named in a comma list (see `names_of`), in table order; all when None."""
    if not names:
        return list(CASES)
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    chosen = [c for c in CASES if names_of(c) & wanted]
    if unknown := wanted - set().union(*(names_of(c) for c in chosen)):
        ids = ", ".join(c.model_id for c in CASES)
        sys.exit(f"unknown model(s) {', '.join(sorted(unknown))}; choose from: {ids}")
    return chosen


# --- inputs --------------------------------------------------------------------------------


def make_mesh(source: Any, faces: int, path: Path) -> tuple[Path, int]:
    """The bunny at about `faces` faces: Loop-subdivided until it has enough, then
    quadric-decimated (trimesh + fast-simplification) to the count, written as OBJ to
    `path`; (path, faces)."""
    mesh = source
    while len(mesh.faces) < faces:
        mesh = mesh.subdivide_loop(1)
    if len(mesh.faces) > faces:
        mesh = mesh.simplify_quadric_decimation(face_count=faces)
    mesh.export(path)
    return path, len(mesh.faces)


def make_image(folder: Path) -> Path:
    """An object on a white backdrop (the silhouette models' case; also the painting image)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), "white")
    pen = ImageDraw.Draw(image)
    pen.ellipse((110, 80, 400, 440), fill=(200, 40, 30))
    pen.rectangle((220, 30, 290, 120), fill=(40, 90, 180))
    path = folder / "object.png"
    image.save(path)
    return path


# --- outcomes ------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float | None = None
    status: str = "ok"  # ok | timeout | failed | skipped
    detail: str = ""
    run_s: float | None = None  # the replica's own timing of run() (API side only)

    def cell(self) -> str:
        return f"{self.seconds:.2f}" if self.seconds is not None else self.status


# --- in-process: run() in a plain worker process --------------------------------------------


def _worker(conn: Connection, threads: int | None, scratch: str) -> None:
    """Child process: load each model once, then time `run()` for each request it receives.
    `threads` sets OMP_NUM_THREADS before numpy loads, as Ray does in a replica; temporary
    files go under `scratch`, which the parent removes even if it had to kill us mid-run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    tempfile.tempdir = scratch
    from deployments.base import JobContext, Model
    from deployments.registry import model_class

    models: dict[str, Model] = {}
    while (request := conn.recv()) is not None:
        model_id, inputs, params = request
        try:
            if model_id not in models:
                models[model_id] = model_class(model_id)()
                models[model_id].load()
            with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
                ctx = JobContext("bench", 1, Path(tmp))
                conn.send(("running", None))  # the timeout starts here, not at the spawn
                started = time.perf_counter()
                models[model_id].run(ctx, inputs, params)
                conn.send(("ok", time.perf_counter() - started))
        except Exception as exc:  # the worker's boundary: report and keep serving
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))


class InProcess:
    """The worker process; restarted after a run is stopped for its timeout, and when a model
    needs another thread count."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._mp = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._threads: int | None = None

    def _start(self, threads: int | None) -> Connection:
        if self._conn is not None and threads != self._threads:
            self.close()
        if self._conn is None:
            self._conn, child = self._mp.Pipe()
            args = (child, threads, str(self._scratch))
            self._proc = self._mp.Process(target=_worker, args=args, daemon=True)
            self._proc.start()
            child.close()
            self._threads = threads
        return self._conn

    def run(
        self,
        model_id: str,
        inputs: Inputs,
        params: dict[str, Any],
        timeout: float,
        threads: int | None = None,
    ) -> Outcome:
        conn = self._start(threads)
        conn.send((model_id, inputs, params))
        try:
            status, value = self._answer(conn, LOAD_TIMEOUT_S, "starting and loading the model")
            if status == "running":
                status, value = self._answer(conn, timeout, "")
        except TimeoutError as exc:
            self.close()
            return Outcome(status="timeout", detail=str(exc))
        except EOFError:
            self.close()
            return Outcome(status="failed", detail="the worker process died (out of memory?)")
        if status == "ok":
            return Outcome(seconds=value)
        return Outcome(status="failed", detail=value)

    @staticmethod
    def _answer(conn: Connection, timeout: float, what: str) -> tuple[str, Any]:
        if not conn.poll(timeout):
            raise TimeoutError(f"over {timeout:g} s" + (f" {what}" if what else ""))
        status, value = conn.recv()
        return str(status), value

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None


# --- through the API -----------------------------------------------------------------------


class Api:
    """A client doing what a user would: upload, submit, poll, download."""

    def __init__(self, url: str, poll_s: float) -> None:
        import requests

        self.url, self.poll_s = url, poll_s
        self.http = requests.Session()

    def _upload(self, slot: str, path: Path) -> str:
        kind = "mesh" if slot == "mesh" else "image"
        with path.open("rb") as fh:
            resp = self.http.post(
                f"{self.url}/api/v1/file-upload/{kind}",
                files={"file": (path.name, fh)},
                timeout=600,
            )
        resp.raise_for_status()
        return str(resp.json()["file_id"])

    def run(self, case: Case, inputs: Inputs, timeout: float) -> Outcome:
        import requests

        try:
            return self._run(case, inputs, timeout)
        except requests.RequestException as exc:  # one cell fails, the run goes on
            return Outcome(status="failed", detail=f"{type(exc).__name__}: {exc}")

    def _run(self, case: Case, inputs: Inputs, timeout: float) -> Outcome:
        started = time.perf_counter()
        body = {**case.body, "model_preference": case.model_id}
        for slot, path in inputs.items():
            body[f"{slot}_file_id"] = self._upload(slot, path)
        resp = self.http.post(self.url + case.route, json=body, timeout=60)
        if resp.status_code != 200:
            return Outcome(status="failed", detail=f"submit {resp.status_code}: {resp.text[:200]}")
        job_id = resp.json()["job_id"]
        job_url = self.url + JOB_ROUTE.format(job_id)
        while time.perf_counter() - started < timeout:
            job = self.http.get(job_url, timeout=60).json()
            if job["status"] == "completed":
                self.http.get(job_url + "/download", timeout=600).raise_for_status()
                info = job["result"].get("generation_info", {})
                return Outcome(
                    seconds=time.perf_counter() - started, run_s=info.get("inference_time_s")
                )
            if job["status"] in ("failed", "cancelled"):
                return Outcome(status="failed", detail=str(job.get("error") or job["status"]))
            time.sleep(self.poll_s)
        self.http.post(job_url + "/cancel", timeout=60)
        return Outcome(status="timeout", detail=f"over {timeout:g} s; job {job_id} cancelled")


# --- the run -------------------------------------------------------------------------------


@dataclass
class Row:
    model_id: str
    label: str
    local: Outcome
    remote: Outcome
    runs: int = 0  # in-process/API pairs measured (the table shows their medians)


@dataclass
class Bench:
    """The two ways to run a job, and how long and how often to try."""

    local: InProcess
    api: Api
    timeout: float
    repeat: int
    threads: dict[str, int | None]  # OMP_NUM_THREADS of the in-process worker per model id

    def run_local(self, case: Case, inputs: Inputs) -> Outcome:
        params = job_params(case)
        threads = self.threads.get(case.model_id)
        return self.local.run(case.model_id, inputs, params, self.timeout, threads)


def replica_threads(args: dict[str, Any], free: bool) -> dict[str, int | None]:
    """OMP_NUM_THREADS as Ray sets it in each model's replica when the environment does not:
    floor(num_cpus), at least 1 (1 for the CPU models' 0.25). None: leave it unset."""
    from meshforge.settings import Settings

    models = Settings(**args).models
    if free or "OMP_NUM_THREADS" in os.environ:
        return {m.model_id: None for m in models}
    return {m.model_id: max(math.floor(m.num_cpus), 1) for m in models}


def variants(
    case: Case, meshes: dict[int, tuple[Path, int]], image: Path
) -> list[tuple[str, Inputs]]:
    """(label, inputs) per row of this case: one per mesh size, or one for its prompt/image."""
    extra = {"image": image} if "image" in case.slots else {}
    if not case.takes_mesh:
        return [(f"image {IMAGE_SIDE}²" if extra else "prompt", extra)]
    return [(f"{faces:,} faces", {**extra, "mesh": path}) for path, faces in meshes.values()]


def median_of(outcomes: list[Outcome]) -> Outcome:
    """The median time (and replica time) of successful tries; else the first failure."""
    if bad := [o for o in outcomes if o.seconds is None]:
        return bad[0]
    run_s = [o.run_s for o in outcomes if o.run_s is not None]
    return Outcome(
        seconds=statistics.median(o.seconds for o in outcomes if o.seconds is not None),
        run_s=statistics.median(run_s) if run_s else None,
    )


def measure_pair(case: Case, inputs: Inputs, bench: Bench, api_first: bool) -> list[Outcome]:
    """[in-process, API] back to back; if the first times out, the other is skipped (it would
    run as long, and then some)."""
    skipped = Outcome(status="skipped", detail="the other side timed out")
    if api_first:
        remote = bench.api.run(case, inputs, bench.timeout)
        local = skipped if remote.status == "timeout" else bench.run_local(case, inputs)
    else:
        local = bench.run_local(case, inputs)
        remote = (
            skipped if local.status == "timeout" else bench.api.run(case, inputs, bench.timeout)
        )
    return [local, remote]


def measure_row(case: Case, label: str, inputs: Inputs, bench: Bench) -> Row:
    """Up to `repeat` in-process/API pairs, back to back so that both sides see the same
    machine load, the order alternating; a cell whose first pair takes over REPEAT_UNDER_S
    runs once."""
    local: list[Outcome] = []
    remote: list[Outcome] = []
    while len(local) < bench.repeat:
        a, b = measure_pair(case, inputs, bench, api_first=len(local) % 2 == 1)
        local.append(a)
        remote.append(b)
        if a.seconds is None or b.seconds is None or a.seconds + b.seconds > REPEAT_UNDER_S:
            break
    row = Row(case.model_id, label, median_of(local), median_of(remote), len(local))
    print(
        f"  {case.model_id:<34} {label:<16} in-process {row.local.cell():>8}  "
        f"API {row.remote.cell():>8}  ({row.runs}x)",
        flush=True,
    )
    return row


def bench_case(
    case: Case, rows: list[tuple[str, Inputs]], warm: Inputs | None, bench: Bench
) -> list[Row]:
    if warm is not None:  # unrecorded: lazy imports and first-call caches on both sides
        bench.run_local(case, warm)
        bench.api.run(case, warm, bench.timeout)
    out: list[Row] = []
    for label, inputs in rows:
        if out and "timeout" in (out[-1].local.status, out[-1].remote.status):
            skip = Outcome(status="skipped", detail="a smaller size timed out")
            out.append(Row(case.model_id, label, skip, skip))
            continue
        out.append(measure_row(case, label, inputs, bench))
    return out


def print_table(rows: list[Row], notes: list[str]) -> None:
    head = (
        f"{'model':<34} {'input':<16} {'in-process s':>12} {'API s':>9} "
        f"{'API/in-proc':>11} {'replica run() s':>15} {'runs':>4}"
    )
    print(f"\n{head}\n{'-' * len(head)}")
    for r in rows:
        a, b = r.local.seconds, r.remote.seconds
        ratio = f"{b / a:.2f}" if a and b else "-"
        run_s = f"{r.remote.run_s:.2f}" if r.remote.run_s is not None else "-"
        print(
            f"{r.model_id:<34} {r.label:<16} {r.local.cell():>12} {r.remote.cell():>9} "
            f"{ratio:>11} {run_s:>15} {r.runs:>4}"
        )
    print("-" * len(head))
    for note in notes:
        print(note)


def warm_inputs(case: Case, warm_mesh: Path | None, image: Path) -> Inputs:
    inputs = {"image": image} if "image" in case.slots else {}
    if case.takes_mesh and warm_mesh is not None:
        inputs["mesh"] = warm_mesh
    return inputs


def measure(opts: argparse.Namespace, tmp: Path, stack: ExitStack) -> None:
    import trimesh

    cases = select_cases(opts.models)
    folder = tmp / "inputs"
    folder.mkdir()
    t0 = time.monotonic()
    meshes: dict[int, tuple[Path, int]] = {}
    warm_mesh = None
    if any(c.takes_mesh for c in cases):
        bunny = trimesh.load(ASSET, force="mesh")
        for size in sorted(set(opts.sizes)):
            meshes[size] = make_mesh(bunny, size, folder / f"bunny_{size}.obj")
        if opts.warmup:
            warm_mesh = make_mesh(bunny, WARMUP_FACES, folder / "warmup.obj")[0]
    image = make_image(folder)
    args = app_args(tmp / "data")
    api = Api(start_serve(stack, args, tmp), opts.poll)
    (tmp / "worker").mkdir()
    local = InProcess(tmp / "worker")
    stack.callback(local.close)  # registered last, so stopped first (it may be mid-run)
    threads = replica_threads(args, opts.free_threads)
    bench = Bench(local, api, opts.timeout, opts.repeat, threads)
    print(f"Inputs and Serve ready in {time.monotonic() - t0:.0f}s", flush=True)

    load_start = os.getloadavg()[0]
    rows: list[Row] = []
    for case in cases:
        warm = warm_inputs(case, warm_mesh, image) if opts.warmup else None
        rows += bench_case(case, variants(case, meshes, image), warm, bench)
    print_table(rows, footer(opts, rows, load_start, threads))


def footer(
    opts: argparse.Namespace, rows: list[Row], load_start: float, threads: dict[str, int | None]
) -> list[str]:
    omp = os.environ.get("OMP_NUM_THREADS")
    if opts.free_threads:
        thread_note = f"in-process OMP_NUM_THREADS {omp or 'unset'} (--free-threads)"
    elif omp is not None:
        thread_note = f"OMP_NUM_THREADS={omp} from the environment, in-process and in replicas"
    else:
        counts = "/".join(sorted({str(t) for t in threads.values()}))
        thread_note = f"in-process OMP_NUM_THREADS={counts}, as Ray sets it in the replicas"
    notes = [
        f"machine: {machine()}; load average (1 min) {load_start:.2f} before the cells, "
        f"{os.getloadavg()[0]:.2f} after (the machine may be shared: read the ratios)",
        f"API s = upload + submit + poll every {opts.poll:g} s until completed + download "
        "(queueing, input staging, output storage and the 512² thumbnail included); "
        "replica run() s = run() as the replica timed it (generation_info.inference_time_s)",
        f"times are medians of `runs` in-process/API pairs, order alternating "
        f"(--repeat {opts.repeat}; cells over {REPEAT_UNDER_S:g} s run once); "
        f"timeout {opts.timeout:g} s per job; {thread_note}"
        + ("" if opts.warmup else "; no warm-up (first rows include lazy imports)"),
    ]
    for r in rows:
        for side, o in (("in-process", r.local), ("API", r.remote)):
            if o.status in ("failed", "timeout") or (o.status == "skipped" and side == "API"):
                notes.append(f"{r.model_id} {r.label}: {side} {o.status}: {o.detail}")
    return notes


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        default=list(DEFAULT_SIZES),
        help="mesh sizes in faces, comma list (default 20000,100000,300000)",
    )
    p.add_argument("--quick", action="store_true", help="only the 20k-face mesh")
    p.add_argument(
        "--models", help="comma list of model ids, features or words of an id (default: all)"
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds per job and side")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help=f"pairs per cell, medians shown (cells over {REPEAT_UNDER_S:g} s run once)",
    )
    p.add_argument(
        "--free-threads",
        action="store_true",
        help="leave OMP_NUM_THREADS unset in the in-process worker (default: as Ray sets it "
        "in the replicas, 1 for a 0.25-CPU model)",
    )
    p.add_argument("--poll", type=float, default=0.2, help="seconds between status polls")
    warmup = f"skip the unrecorded {WARMUP_FACES:,}-face job per model and side"
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help=warmup)
    opts = p.parse_args()
    if opts.quick:
        opts.sizes = list(QUICK_SIZES)
    if not opts.sizes or min(opts.sizes) < 100:
        p.error("--sizes needs face counts of at least 100")
    if opts.repeat < 1:
        p.error("--repeat needs at least 1")
    return opts


def main() -> int:
    opts = parse_args()
    if not ASSET.is_file():
        sys.exit(f"asset not found: {ASSET}")
    catch_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="meshforge-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        try:
            measure(opts, tmp, stack)
        except KeyboardInterrupt:
            print("\nInterrupted; cleaning up...", file=sys.stderr)
            return 130
        finally:
            # A second Ctrl-C must not cut the teardown (the stack's callbacks) short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("Stopping the worker, Serve and the Ray head...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
