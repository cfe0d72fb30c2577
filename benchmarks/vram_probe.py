"""VRAM probe: peak GPU memory, load time and run time of each GPU model on a reference input.

For a GPU host with the models installed (a worker image of cluster/images, weights under
/models/weights). For each model of `serve_config.gpu.yaml` that asks for a GPU (or those
named by --models), in a fresh child process:

  construct the class from the registry with the options of the config (and
  `weights_root` = the config's `weights_dir` when the class takes it, as the replica does),
  check `availability()`, `load()`, `run()` on a reference input built from the test assets,
  `unload()`.

Measured, per model:

  nvml_peak_mib        this process's own GPU memory as NVML reports it
                       (nvmlDeviceGetComputeRunningProcesses, matched by pid), sampled every
                       --interval s from before load to after run: the CUDA context, the
                       caching allocator's reserve and non-torch allocations (cuBLAS, cuDNN,
                       custom CUDA extensions) included. This is what the VRAM ledger budgets.
  torch_alloc_peak_mib torch.cuda.max_memory_allocated(): live tensors only (what the
                       reference's declared figures measured).
  torch_reserved_peak  torch.cuda.max_memory_reserved(): the caching allocator's peak.
  context_mib          the process's NVML usage after CUDA initialisation, before load.
  load_s, run_s        wall time of load() and run().

  suggested vram_mb = max(nvml peak, context + torch reserved peak) rounded up to 256 MiB
  (the second term covers a peak shorter than the sampling interval), and the num_gpus that
  serve_config.gpu.yaml's rule derives from it.

Where NVML cannot see the process by pid (a container with its own PID namespace), the
probe uses the device's used memory minus its reading before the child started, and says
so in the `method` column: run it on an otherwise idle GPU.

`--baseline` needs no model: it validates the method on this GPU with known sizes (the
CUDA context alone; an nn.Linear stack of --baseline-mib MiB of float32 parameters; a
forward pass; the memory after freeing) and prints measured/expected ratios.

    python benchmarks/vram_probe.py [--models trellis_image_to_raw_mesh,unirig_auto_rig]
        [--config serve_config.gpu.yaml] [--assets ../shared/assets] [--json out.json]
        [--markdown out.md] [--timeout 1800] [--interval 0.05] [--gpu 0] [--keep-loaded]
    python benchmarks/vram_probe.py --baseline [--baseline-mib 1024]

Exit status: 0 when every probe ran, 1 when one failed, 2 when there is no usable GPU
(said in one line, no traceback).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_CONFIG = ROOT / "serve_config.gpu.yaml"
DEFAULT_ASSETS = ROOT.parent / "shared" / "assets"
MIB = 1024 * 1024
ROUND_MIB = 256  # suggested vram_mb is rounded up to this
REFERENCE_CARD_MIB = 24576  # the num_gpus rule of serve_config.gpu.yaml
NO_GPU_EXIT = 2


class NoGpu(Exception):
    """No usable NVIDIA GPU: reported in one line, exit status 2."""


# --- the rules the config uses ----------------------------------------------------------


def gpu_fraction(vram_mb: int) -> float:
    """num_gpus for a peak of `vram_mb`: over a 24 GiB card, rounded up to 0.05, at most 1."""
    return min(1.0, -(-vram_mb * 20 // REFERENCE_CARD_MIB) / 20)


def suggested_vram_mb(nvml_peak_mib: float | None, context_mib: float, reserved_mib: float) -> int:
    """The figure for a spec's vram_mb: the larger of the sampled process peak and context +
    allocator peak, rounded up to 256 MiB."""
    peak = max(nvml_peak_mib or 0.0, context_mib + reserved_mib)
    return int(math.ceil(peak / ROUND_MIB) * ROUND_MIB)


# --- NVML -------------------------------------------------------------------------------


def check_gpu(index: int) -> dict[str, Any]:
    """The GPU the probe will use, or NoGpu with the reason. Nothing is allocated here."""
    try:
        import pynvml
    except ImportError:
        raise NoGpu("the nvidia-ml-py package (pynvml) is not installed") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NoGpu(f"NVML cannot start ({exc}): no NVIDIA driver or GPU on this host") from None
    count = pynvml.nvmlDeviceGetCount()
    if count == 0:
        raise NoGpu("NVML reports no GPU on this host")
    if not 0 <= index < count:
        raise NoGpu(f"--gpu {index}: this host has GPUs 0..{count - 1}")
    try:
        import torch
    except ImportError:
        raise NoGpu("torch is not installed in this environment") from None
    if not torch.cuda.is_available():
        raise NoGpu(f"torch {torch.__version__} cannot use CUDA (built for {torch.version.cuda})")
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return {
        "index": index,
        "name": str(pynvml.nvmlDeviceGetName(handle)),
        "total_mib": round(mem.total / MIB),
        "used_mib_before": round(mem.used / MIB),
        "driver": str(pynvml.nvmlSystemGetDriverVersion()),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


class ProcessMemory:
    """This process's GPU memory through NVML, polled by a thread that keeps the peak."""

    def __init__(self, gpu: int, interval: float) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._pid = os.getpid()
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
        self._device_start = pynvml.nvmlDeviceGetMemoryInfo(self._handle).used
        self.interval = interval
        self.method = "nvml-pid"
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="vram-sampler", daemon=True)

    def _pids(self) -> set[int]:
        """This process and its children (a model may run a step in a subprocess)."""
        pids = {self._pid}
        try:
            import psutil

            pids.update(c.pid for c in psutil.Process(self._pid).children(recursive=True))
        except Exception:  # psutil missing or a child gone: count what we can
            pass
        return pids

    def current(self) -> int:
        """Bytes this process (and its children) hold on the GPU now; see the module
        docstring for the fallback when NVML cannot match the pid."""
        nvml = self._nvml
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
        except nvml.NVMLError:
            procs = []
        pids = self._pids()
        mine = [p for p in procs if p.pid in pids]
        if mine and all(getattr(p, "usedGpuMemory", None) is not None for p in mine):
            self.method = "nvml-pid"
            return sum(int(p.usedGpuMemory) for p in mine)
        if not procs and self.peak == 0:
            return 0  # no CUDA context on the device yet
        self.method = "device-delta"
        used_now = nvml.nvmlDeviceGetMemoryInfo(self._handle).used
        return max(0, int(used_now) - int(self._device_start))

    def sample(self) -> int:
        value = self.current()
        self.peak = max(self.peak, value)
        return value

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> ProcessMemory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()


# --- reference inputs -------------------------------------------------------------------

# feature -> (request class in app.schemas, input slots, request body)
# fmt: off
REFERENCE: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "text_to_raw_mesh": ("TextToRawMeshRequest", (),
                         {"text_prompt": "a wooden chair", "seed": 42}),
    "text_to_textured_mesh": ("TextToTexturedMeshRequest", (),
                              {"text_prompt": "A red sports car",
                               "texture_prompt": "shiny metallic paint", "seed": 42}),
    "text_mesh_painting": ("TextMeshPaintingRequest", ("mesh",),
                           {"text_prompt": "rusty metal texture", "seed": 42}),
    "image_to_raw_mesh": ("ImageToRawMeshRequest", ("image",), {"seed": 42}),
    "image_to_textured_mesh": ("ImageToTexturedMeshRequest", ("image",), {"seed": 42}),
    "image_mesh_painting": ("ImageMeshPaintingRequest", ("image", "mesh"), {"seed": 42}),
    "part_completion": ("PartCompletionRequest", ("mesh",), {"seed": 42}),
    "mesh_segmentation": ("SegmentMeshRequest", ("mesh",), {"num_parts": 8, "seed": 42}),
    "auto_rig": ("GenerateRigRequest", ("mesh",), {"rig_mode": "full"}),
    "retopology": ("RetopologizeRequest", ("mesh",), {"seed": 42}),
    "uv_unwrapping": ("UnwrapMeshRequest", ("mesh",), {}),
}
# The asset each feature's mesh slot gets (part completion: teapot split into its parts).
MESH_ASSET: dict[str, str] = {
    "text_mesh_painting": "cow.obj",
    "image_mesh_painting": "spot.obj",
    "part_completion": "teapot.obj",
    "mesh_segmentation": "cheburashka.obj",
    "auto_rig": "cheburashka.obj",
    "retopology": "stanford-bunny.obj",
    "uv_unwrapping": "spot.obj",
}
IMAGE_ASSET = "spot_textured.glb"  # rendered to a 512² PNG for the image inputs
# fmt: on


def job_params(feature: str) -> dict[str, Any]:
    """The params the replica hands to run(): the request model's fields without inputs
    and routing, plus output_format (the feature's default), as app.jobs stores them."""
    from app import schemas
    from meshforge.features import FEATURES

    request_name, _, body = REFERENCE[feature]
    request = getattr(schemas, request_name).model_validate(body)
    params = request.model_dump(
        exclude=set(schemas.INPUT_FIELDS) | {"output_format", "model_preference"}
    )
    params = {k: v for k, v in params.items() if v is not None or k == "seed"}
    return {**params, "output_format": FEATURES[feature].default_output_format}


def reference_inputs(feature: str, assets: Path, folder: Path) -> dict[str, Path]:
    """Input files of the feature's reference job, written under `folder`."""
    import trimesh

    from deployments.geometry.mesh_io import load_mesh, load_scene

    slots = REFERENCE[feature][1]
    inputs: dict[str, Path] = {}
    if "image" in slots:
        from PIL import Image

        from deployments.geometry.render import render_numpy

        scene = load_scene(assets / IMAGE_ASSET)
        image = folder / "spot_render.png"
        Image.fromarray(render_numpy(scene, 512)).save(image)
        inputs["image"] = image
    if "mesh" in slots:
        source = assets / MESH_ASSET[feature]
        if feature == "part_completion":
            mesh = load_mesh(source)
            mesh.merge_vertices()
            parts = [p for p in mesh.split(only_watertight=False) if len(p.faces) >= 16]
            target = folder / "teapot_parts.glb"
            trimesh.Scene(parts).export(target)
            inputs["mesh"] = target
        else:
            inputs["mesh"] = source
    return inputs


def missing_assets(assets: Path, features: set[str]) -> list[str]:
    names = {MESH_ASSET[f] for f in features if f in MESH_ASSET}
    if any("image" in REFERENCE[f][1] for f in features):
        names.add(IMAGE_ASSET)
    return sorted(n for n in names if not (assets / n).is_file())


# --- the probes (child processes) -------------------------------------------------------


@dataclass
class Row:
    model_id: str
    feature: str = ""
    status: str = "ok"  # ok | unavailable | failed | timeout
    detail: str = ""
    method: str = ""
    context_mib: float = 0.0
    load_s: float | None = None
    run_s: float | None = None
    nvml_load_peak_mib: float | None = None
    nvml_peak_mib: float | None = None
    torch_alloc_peak_mib: float | None = None
    torch_reserved_peak_mib: float | None = None
    after_unload_mib: float | None = None
    spec_vram_mb: int = 0
    suggested_vram_mb: int | None = None
    suggested_num_gpus: float | None = None
    stages: list[str] = field(default_factory=list)


@dataclass
class Task:
    model_id: str
    feature: str
    options: dict[str, Any]
    inputs: dict[str, str]
    params: dict[str, Any]
    spec_vram_mb: int


def _probe_models(
    conn: Connection, tasks: list[Task], gpu: int, interval: float, keep: bool
) -> None:
    """Child: run each task, send one Row per task. With `keep`, models stay loaded, so each
    row's peak is that of everything loaded so far (a shared deployment's total)."""
    import torch

    from deployments.base import JobContext, Model
    from deployments.registry import model_class

    memory = ProcessMemory(gpu, interval)
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    context = memory.sample() / MIB
    memory.start()
    loaded: list[Model] = []
    for task in tasks:
        row = Row(task.model_id, task.feature, spec_vram_mb=task.spec_vram_mb)
        row.context_mib = round(context, 1)
        try:
            model = model_class(task.model_id)(**task.options)
            reason = model.availability()
            if reason is not None:
                row.status, row.detail = "unavailable", reason
                conn.send(asdict(row))
                continue
            if not keep:
                torch.cuda.reset_peak_memory_stats()
                memory.peak = memory.sample()
            started = time.perf_counter()
            model.load()
            torch.cuda.synchronize()
            row.load_s = round(time.perf_counter() - started, 2)
            row.nvml_load_peak_mib = round(max(memory.peak, memory.sample()) / MIB, 1)
            with tempfile.TemporaryDirectory(prefix="vram-probe-") as tmp:
                ctx = JobContext("vram-probe", 1, Path(tmp), _stage_recorder(row))
                inputs = {k: Path(v) for k, v in task.inputs.items()}
                started = time.perf_counter()
                model.run(ctx, inputs, dict(task.params))
                torch.cuda.synchronize()
                row.run_s = round(time.perf_counter() - started, 2)
            row.nvml_peak_mib = round(max(memory.peak, memory.sample()) / MIB, 1)
            row.torch_alloc_peak_mib = round(torch.cuda.max_memory_allocated() / MIB, 1)
            row.torch_reserved_peak_mib = round(torch.cuda.max_memory_reserved() / MIB, 1)
            row.suggested_vram_mb = suggested_vram_mb(
                row.nvml_peak_mib, context, row.torch_reserved_peak_mib
            )
            row.suggested_num_gpus = gpu_fraction(row.suggested_vram_mb)
            if keep:
                loaded.append(model)
            else:
                model.unload()
                torch.cuda.empty_cache()
                row.after_unload_mib = round(memory.sample() / MIB, 1)
        except Exception as exc:  # one model's failure is a row, not the end of the run
            row.status, row.detail = "failed", f"{type(exc).__name__}: {exc}"[:500]
            torch.cuda.empty_cache()
        row.method = memory.method
        conn.send(asdict(row))
    memory.stop()
    conn.send(None)


def _stage_recorder(row: Row) -> Callable[[str, float], None]:
    """A progress callback that keeps the stage names a run reports, in order."""

    def record(stage: str, fraction: float) -> None:
        if not row.stages or row.stages[-1] != stage:
            row.stages.append(stage)

    return record


def _baseline(conn: Connection, gpu: int, interval: float, mib: int) -> None:
    """Child: the method on known sizes; sends a list of measurement dicts."""
    import torch

    memory = ProcessMemory(gpu, interval)
    rows: list[dict[str, Any]] = []

    def measure(what: str, expected: float | None) -> None:
        torch.cuda.synchronize()
        rows.append(
            {
                "what": what,
                "expected_mib": None if expected is None else round(expected / MIB, 1),
                "torch_allocated_mib": round(torch.cuda.memory_allocated() / MIB, 1),
                "torch_reserved_mib": round(torch.cuda.memory_reserved() / MIB, 1),
                "nvml_mib": round(memory.sample() / MIB, 1),
            }
        )

    torch.cuda.init()
    torch.zeros(1, device="cuda")
    measure("CUDA context (+ one 4-byte tensor)", None)
    memory.start()
    width = 1024
    layers = max(1, round(mib * MIB / (width * width * 4)))
    net = torch.nn.Sequential(*(torch.nn.Linear(width, width) for _ in range(layers)))
    expected = sum(p.numel() * p.element_size() for p in net.parameters())
    net = net.cuda()
    measure(f"{layers} x Linear({width}, {width}) float32 parameters", expected)
    batch = 4096
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        net(torch.randn(batch, width, device="cuda"))
    # Live at the peak: the input (held by the caller), one layer's input and its output.
    activations = 3 * batch * width * 4
    rows.append(
        {
            "what": f"forward pass, batch {batch}: peak above the parameters",
            "expected_mib": round(activations / MIB, 1),
            "torch_allocated_mib": round((torch.cuda.max_memory_allocated() - expected) / MIB, 1),
            "torch_reserved_mib": round(torch.cuda.max_memory_reserved() / MIB, 1),
            "nvml_mib": round(memory.sample() / MIB, 1),
        }
    )
    del net
    torch.cuda.empty_cache()
    measure("after del + empty_cache", 0)
    memory.stop()
    rows.append(
        {
            "what": "sampled NVML peak over the run",
            "expected_mib": None,
            "torch_allocated_mib": None,
            "torch_reserved_mib": None,
            "nvml_mib": round(memory.peak / MIB, 1),
        }
    )
    conn.send({"rows": rows, "method": memory.method, "params_mib": round(expected / MIB, 1)})


def _spawn(target: Any, args: tuple[Any, ...], gpu: int) -> tuple[Any, Connection]:
    # NVML numbers GPUs by PCI bus; make CUDA (in the child) number them the same way.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", str(gpu))
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe()
    proc = mp.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    child.close()
    return proc, parent


def _stop(proc: Any) -> None:
    proc.terminate()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join(10)


def run_tasks(tasks: list[Task], opts: argparse.Namespace) -> list[Row]:
    """One child per model (or one for all with --keep-loaded); a child over --timeout or
    one that dies is stopped and its remaining models reported."""
    batches = [tasks] if opts.keep_loaded else [[t] for t in tasks]
    rows: list[Row] = []
    for batch in batches:
        args = (batch, opts.gpu, opts.interval, opts.keep_loaded)
        proc, conn = _spawn(_probe_models, args, opts.gpu)
        done: list[str] = []
        try:
            while True:
                if not conn.poll(opts.timeout):
                    raise TimeoutError(f"over {opts.timeout:g} s")
                message = conn.recv()
                if message is None:
                    break
                rows.append(Row(**message))
                done.append(message["model_id"])
                print(_progress_line(rows[-1]), file=sys.stderr, flush=True)
        except (TimeoutError, EOFError) as exc:
            why = str(exc) if isinstance(exc, TimeoutError) else "the probe process died"
            for task in batch:
                if task.model_id not in done:
                    status = "timeout" if isinstance(exc, TimeoutError) else "failed"
                    rows.append(Row(task.model_id, task.feature, status, why))
        finally:
            _stop(proc)
    return rows


def _progress_line(row: Row) -> str:
    if row.status != "ok":
        return f"  {row.model_id}: {row.status}: {row.detail}"
    return (
        f"  {row.model_id}: load {row.load_s} s, run {row.run_s} s, "
        f"NVML peak {row.nvml_peak_mib} MiB, torch peak {row.torch_alloc_peak_mib} MiB"
    )


# --- configuration ------------------------------------------------------------------------


def load_tasks(opts: argparse.Namespace) -> list[Task]:
    """The selected models with their constructor options, reference params and inputs."""
    import yaml

    from deployments.registry import MODEL_CLASSES, model_class
    from meshforge.settings import Settings

    raw = yaml.safe_load(Path(opts.config).read_text())
    settings = Settings(**raw["applications"][0]["args"])
    configured = {m.model_id: m for m in settings.models}
    gpu_ids = [m.model_id for m in settings.models if m.num_gpus > 0]
    wanted = [m.strip() for m in opts.models.split(",") if m.strip()] if opts.models else gpu_ids
    if unknown := [m for m in wanted if m not in MODEL_CLASSES]:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; GPU models: {', '.join(gpu_ids)}")
    assets = Path(opts.assets)
    features = {model_class(m).spec.feature for m in wanted}
    if missing := missing_assets(assets, features):
        sys.exit(f"--assets {assets}: missing {', '.join(missing)} (see ../shared/assets)")
    folder = Path(tempfile.mkdtemp(prefix="vram-probe-inputs-"))
    tasks: list[Task] = []
    for model_id in wanted:
        cls = model_class(model_id)
        cfg = configured.get(model_id)
        options = dict(cfg.options) if cfg else {}
        if "weights_root" in inspect.signature(cls.__init__).parameters:
            options.setdefault("weights_root", str(settings.weights_dir))
        feature = cls.spec.feature
        if feature not in REFERENCE:
            sys.exit(f"{model_id}: no reference input for feature {feature!r}")
        inputs = reference_inputs(feature, assets, folder)
        spec_mb = (cfg.vram_mb if cfg and cfg.vram_mb else None) or cls.spec.vram_mb
        tasks.append(
            Task(
                model_id,
                feature,
                options,
                {k: str(v) for k, v in inputs.items()},
                job_params(feature),
                spec_mb,
            )
        )
    return tasks


# --- output -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def models_markdown(gpu: dict[str, Any], rows: list[Row], keep: bool) -> str:
    head = (
        f"GPU {gpu['index']}: {gpu['name']}, {gpu['total_mib']} MiB, driver {gpu['driver']}, "
        f"torch {gpu['torch']} (CUDA {gpu['torch_cuda']}), Python {gpu['python']}"
    )
    lines = [
        head,
        "",
        "| model | status | load s | run s | context MiB | NVML peak MiB | torch alloc peak "
        "MiB | torch reserved peak MiB | spec vram_mb | suggested vram_mb | suggested num_gpus "
        "| method |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        status = r.status if r.status == "ok" else f"{r.status}: {r.detail}"
        cells = [
            r.model_id,
            status.replace("|", "/"),
            _cell(r.load_s),
            _cell(r.run_s),
            _cell(r.context_mib) if r.status == "ok" else "",
            _cell(r.nvml_peak_mib),
            _cell(r.torch_alloc_peak_mib),
            _cell(r.torch_reserved_peak_mib),
            _cell(r.spec_vram_mb),
            _cell(r.suggested_vram_mb),
            _cell(r.suggested_num_gpus),
            r.method,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if keep:
        lines.append("--keep-loaded: one process, nothing unloaded; peaks are cumulative.")
    lines.append(
        "suggested vram_mb = max(NVML peak, context + torch reserved peak), rounded up to "
        f"{ROUND_MIB} MiB; suggested num_gpus by the rule of serve_config.gpu.yaml."
    )
    return "\n".join(lines) + "\n"


def baseline_markdown(gpu: dict[str, Any], result: dict[str, Any]) -> str:
    lines = [
        f"GPU {gpu['index']}: {gpu['name']}, {gpu['total_mib']} MiB, driver {gpu['driver']}, "
        f"torch {gpu['torch']}; NVML method: {result['method']}",
        "",
        "| measurement | expected MiB | torch allocated MiB | torch reserved MiB | NVML MiB "
        "| torch/expected | NVML - context |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    context = result["rows"][0]["nvml_mib"]
    for row in result["rows"]:
        expected, alloc = row["expected_mib"], row["torch_allocated_mib"]
        ratio = f"{alloc / expected:.3f}" if expected and alloc is not None else ""
        cells = [
            row["what"],
            _cell(expected),
            _cell(alloc),
            _cell(row["torch_reserved_mib"]),
            _cell(row["nvml_mib"]),
            ratio,
            f"{row['nvml_mib'] - context:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"CUDA context: {context} MiB of NVML usage that torch does not count. "
        "Parameters: torch/expected should be 1.000; NVML - context should be the parameters "
        "rounded up to the allocator's 2 MiB blocks (plus cuBLAS workspace after the first "
        "matmul). After freeing, NVML should fall back to about the context.",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(opts: argparse.Namespace, payload: dict[str, Any], table: str) -> None:
    print(table)
    if opts.json:
        Path(opts.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {opts.json}", file=sys.stderr)
    if opts.markdown:
        Path(opts.markdown).write_text(table)
        print(f"wrote {opts.markdown}", file=sys.stderr)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="serve config YAML")
    parser.add_argument("--models", help="comma list of model ids (default: GPU models)")
    parser.add_argument("--assets", default=str(DEFAULT_ASSETS), help="test assets folder")
    parser.add_argument("--json", default="vram_probe.json", help="JSON output ('' for none)")
    parser.add_argument("--markdown", default="", help="also write the table to this file")
    parser.add_argument("--timeout", type=float, default=1800.0, help="s per model")
    parser.add_argument("--interval", type=float, default=0.05, help="NVML sampling period s")
    parser.add_argument("--gpu", type=int, default=0, help="NVML index of the GPU to use")
    parser.add_argument(
        "--keep-loaded",
        action="store_true",
        help="one process for all models, none unloaded (a shared deployment's total)",
    )
    parser.add_argument("--baseline", action="store_true", help="validate the method, no models")
    parser.add_argument("--baseline-mib", type=int, default=1024, help="parameter MiB")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        gpu = check_gpu(opts.gpu)
    except NoGpu as exc:
        print(f"vram_probe: no usable GPU: {exc}. Run it on a GPU host.", file=sys.stderr)
        return NO_GPU_EXIT
    tasks = [] if opts.baseline else load_tasks(opts)
    print(f"GPU {gpu['index']}: {gpu['name']} ({gpu['total_mib']} MiB)", file=sys.stderr)
    if opts.baseline:
        args = (opts.gpu, opts.interval, opts.baseline_mib)
        proc, conn = _spawn(_baseline, args, opts.gpu)
        try:
            if not conn.poll(opts.timeout):
                print(f"vram_probe: baseline over {opts.timeout:g} s", file=sys.stderr)
                return 1
            result = conn.recv()
        except EOFError:
            print("vram_probe: the baseline process died", file=sys.stderr)
            return 1
        finally:
            _stop(proc)
        payload = {"gpu": gpu, "baseline": result}
        write_outputs(opts, payload, baseline_markdown(gpu, result))
        return 0
    rows = run_tasks(tasks, opts)
    payload = {"gpu": gpu, "keep_loaded": opts.keep_loaded, "rows": [asdict(r) for r in rows]}
    write_outputs(opts, payload, models_markdown(gpu, rows, opts.keep_loaded))
    return 0 if all(r.status in ("ok", "unavailable") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
