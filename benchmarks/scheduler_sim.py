"""Discrete-event simulation of GPU scheduling: our policy against two baselines.

Replays one seeded workload (or a JSON trace) under three policies and prints one table:

* ``ours``      `scheduling.Scheduler`, the same code the job manager runs;
* ``fifo``      strict global FIFO: the head job blocks everything until its model is
                loaded; room is made by evicting the longest-idle models; when no room can
                be made it sleeps a fixed retry interval (how the seed project works);
* ``autoscale`` per-model autoscaling: a model with jobs scales to one replica, placed
                where its declared VRAM fits in what the GPU reports free at that moment
                (loads in flight are invisible), and scales to zero after a fixed idle
                timeout; no eviction, no coordination between models.

The GPU model: a replica's memory materialises when its load completes; a load that
would take a GPU past its physical memory is a VRAM overcommit (a CUDA OOM) and fails.
Jobs on one GPU share its compute (processor sharing), so co-resident replicas both run,
each slower. Unloads are instantaneous. The lower bound is total service time / GPUs.

Usage: python benchmarks/scheduler_sim.py [--seed N] [--gpus 4x24576] [--jobs N]
       [--rate 60% | --rate 0.02] [--trace trace.json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduling.errors import ModelTooLarge  # noqa: E402
from scheduling.ids import GpuRef  # noqa: E402
from scheduling.inventory import GpuInfo, GpuInventory, parse_simulated_inventory  # noqa: E402
from scheduling.models import ModelProfile  # noqa: E402
from scheduling.policy import Scheduler, SchedulerConfig  # noqa: E402
from scheduling.resources import Vram  # noqa: E402

# Declared peaks (MiB) from ../shared/reference/gpu_models.md, for the spec's model ids.
DECLARED_MIB: dict[str, int] = {
    "trellis_text_to_raw_mesh": 11776,
    "trellis_text_to_textured_mesh": 11776,
    "trellis_image_to_raw_mesh": 11776,
    "trellis_image_to_textured_mesh": 11776,
    "trellis_image_mesh_painting": 12288,
    "holopart_part_completion": 10240,
    "partfield_mesh_segmentation": 4096,
    "unirig_auto_rig": 9216,
    "fastmesh_v1k_retopology": 16384,
    "fastmesh_v4k_retopology": 24500,
    "partuv_uv_unwrapping": 7168,
}
OWNERS = ("alice", "bob", "carol", "dave", "erin")


@dataclass(frozen=True)
class Job:
    job_id: str
    arrival_s: float
    model_id: str
    service_s: float
    owner: str = "alice"
    priority: int = 0


@dataclass
class Workload:
    jobs: list[Job]
    vram_mib: dict[str, int]
    load_s: dict[str, float]


def _model_times(
    rng: random.Random, models: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per model: a load time of 10-60 s and a mean service time of 20 s to 3 min."""
    load = {m: round(rng.uniform(10, 60), 1) for m in models}
    service = {m: round(rng.uniform(20, 180), 1) for m in models}
    return load, service


def make_workload(seed: int, n_jobs: int, n_gpus: int, rate: str) -> Workload:
    """Poisson arrivals over the spec's models with Zipf popularity (a few hot models, a
    long tail, in a seeded order). `rate` is arrivals/s, or a load factor like "60%"."""
    rng = random.Random(seed)
    models = list(DECLARED_MIB)
    load_s, mean_service = _model_times(rng, models)
    rng.shuffle(models)
    weights = [1.0 / (rank + 1) for rank in range(len(models))]
    mix_mean = sum(w * mean_service[m] for w, m in zip(weights, models, strict=True)) / sum(weights)
    if rate.endswith("%"):
        arrivals_per_s = float(rate[:-1]) / 100 * n_gpus / mix_mean
    else:
        arrivals_per_s = float(rate)
    jobs, t = [], 0.0
    for i in range(n_jobs):
        t += rng.expovariate(arrivals_per_s)
        model = rng.choices(models, weights)[0]
        service = mean_service[model] * rng.uniform(0.5, 1.5)
        jobs.append(Job(f"j{i}", round(t, 3), model, round(service, 3), rng.choice(OWNERS)))
    return Workload(jobs, dict(DECLARED_MIB), load_s)


def load_trace(path: Path, seed: int) -> Workload:
    """A JSON list of {arrival_s, model_id, service_s[, owner, priority, vram_mib, load_s]};
    models outside the declared table need vram_mib; load times default to seeded draws."""
    rows = json.loads(path.read_text())
    vram, load = dict(DECLARED_MIB), _model_times(random.Random(seed), list(DECLARED_MIB))[0]
    jobs = []
    for i, row in enumerate(sorted(rows, key=lambda r: float(r["arrival_s"]))):
        model = str(row["model_id"])
        if "vram_mib" in row:
            vram[model] = int(row["vram_mib"])
        if model not in vram:
            sys.exit(f"trace row {i}: unknown model {model!r} and no vram_mib given")
        load[model] = float(row.get("load_s", load.get(model, 30.0)))
        owner, prio = str(row.get("owner", "alice")), int(row.get("priority", 0))
        jobs.append(
            Job(f"j{i}", float(row["arrival_s"]), model, float(row["service_s"]), owner, prio)
        )
    return Workload(jobs, vram, load)


class SimGpu:
    """Ground truth of one GPU: memory really held, and processor-shared jobs."""

    def __init__(self, ref: GpuRef, total_mib: int) -> None:
        self.ref, self.total_mib = ref, total_mib
        self.resident: dict[str, int] = {}
        self.jobs: dict[str, float] = {}  # job id -> remaining exclusive service seconds
        self.clock = self.busy_s = 0.0
        self.epoch = 0

    def used_mib(self) -> int:
        return sum(self.resident.values())

    def advance(self, now: float) -> None:
        elapsed = now - self.clock
        if self.jobs and elapsed > 0:
            for job_id in self.jobs:
                self.jobs[job_id] -= elapsed / len(self.jobs)
            self.busy_s += elapsed
        self.clock = now


class Policy(Protocol):
    def arrive(self, job: Job, now: float) -> None: ...
    def load_done(self, model_id: str, gpu: GpuRef, ok: bool, now: float) -> None: ...
    def job_done(self, job: Job, now: float) -> None: ...
    def step(self, now: float) -> None: ...


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    makespan_s: float = 0.0
    busy: float = 0.0
    loads: int = 0
    unloads: int = 0
    overcommits: int = 0
    rejected: int = 0
    unfinished: int = 0


class Sim:
    """The event loop and the cluster's ground truth, shared by every policy."""

    def __init__(self, workload: Workload, gpus: str) -> None:
        self.w = workload
        inventory = parse_simulated_inventory(gpus)
        self.gpus = {g.ref: SimGpu(g.ref, g.total_mib) for g in inventory}
        self.jobs = {j.job_id: j for j in workload.jobs}
        self._events: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.finished: dict[str, float] = {}
        self.result = Result("")

    def at(self, when: float, kind: str, data: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, kind, data))

    def reading(self, gpu: SimGpu) -> GpuInfo:
        return GpuInfo(
            gpu.ref.node_id, gpu.ref.index, gpu.total_mib, gpu.total_mib - gpu.used_mib()
        )

    def start_load(self, model_id: str, ref: GpuRef, now: float) -> None:
        self.result.loads += 1
        self.at(now + self.w.load_s[model_id], "load", (model_id, ref))

    def unload(self, model_id: str, ref: GpuRef) -> None:
        self.gpus[ref].resident.pop(model_id, None)
        self.result.unloads += 1

    def start_job(self, job_id: str, ref: GpuRef, now: float) -> None:
        gpu = self.gpus[ref]
        gpu.advance(now)
        gpu.jobs[job_id] = self.jobs[job_id].service_s
        self._reschedule(gpu)

    def reject(self, job: Job) -> None:
        self.result.rejected += 1
        self.jobs.pop(job.job_id, None)

    def _reschedule(self, gpu: SimGpu) -> None:
        gpu.epoch += 1
        if gpu.jobs:
            self.at(
                gpu.clock + min(gpu.jobs.values()) * len(gpu.jobs), "done", (gpu.ref, gpu.epoch)
            )

    def _handle(self, kind: str, data: Any, now: float, policy: Policy) -> None:
        if kind == "arrive":
            policy.arrive(data, now)
        elif kind == "load":
            model_id, ref = data
            gpu, need = self.gpus[ref], self.w.vram_mib[model_id]
            ok = gpu.used_mib() + need <= gpu.total_mib
            if ok:
                gpu.resident[model_id] = need
            else:
                self.result.overcommits += 1  # a CUDA OOM: the load fails
            policy.load_done(model_id, ref, ok, now)
        elif kind == "done":
            gpu = self.gpus[data[0]]
            if data[1] != gpu.epoch:
                return
            gpu.advance(now)
            for job_id in [j for j, left in gpu.jobs.items() if left <= 1e-6]:
                del gpu.jobs[job_id]
                self.finished[job_id] = now
                policy.job_done(self.jobs[job_id], now)
            self._reschedule(gpu)

    def run(self, name: str, make_policy: Callable[[Sim], Policy]) -> Result:
        self.result = Result(name)
        policy = make_policy(self)
        for job in self.w.jobs:
            self.at(job.arrival_s, "arrive", job)
        horizon = 50 * max((j.arrival_s + j.service_s for j in self.w.jobs), default=1.0)
        while self._events and self._events[0][0] <= horizon:
            now = self._events[0][0]
            while self._events and self._events[0][0] == now:
                _, _, kind, data = heapq.heappop(self._events)
                self._handle(kind, data, now, policy)
            policy.step(now)
        return self._summarise()

    def _summarise(self) -> Result:
        r = self.result
        r.latencies = sorted(t - self.jobs[j].arrival_s for j, t in self.finished.items())
        r.unfinished = len(self.jobs) - len(self.finished)
        r.makespan_s = max(self.finished.values(), default=0.0)
        busy = sum(g.busy_s for g in self.gpus.values())
        r.busy = busy / (len(self.gpus) * r.makespan_s) if r.makespan_s else 0.0
        return r


class Ours:
    """Adapter: the simulator's events into `Scheduler` calls, its plans into actions."""

    def __init__(self, sim: Sim, margin_mib: int) -> None:
        self.sim = sim
        inventory = GpuInventory(sim.reading(g) for g in sim.gpus.values())
        profiles = [
            ModelProfile(m, Vram(v), load_time_s=sim.w.load_s[m]) for m, v in sim.w.vram_mib.items()
        ]
        self.s = Scheduler(inventory, profiles, SchedulerConfig(margin=Vram(margin_mib)))

    def arrive(self, job: Job, now: float) -> None:
        try:
            self.s.submit(job.job_id, job.model_id, now=now, priority=job.priority, owner=job.owner)
        except ModelTooLarge:
            self.sim.reject(job)

    def load_done(self, model_id: str, gpu: GpuRef, ok: bool, now: float) -> None:
        self.s.load_finished(model_id, gpu, now, ok)

    def job_done(self, job: Job, now: float) -> None:
        self.s.job_finished(job.job_id, now)

    def step(self, now: float) -> None:
        for _ in range(4):  # unloads are instant here: their room is usable in the same instant
            for gpu in self.sim.gpus.values():
                self.s.update_gpu(self.sim.reading(gpu))
            plan = self.s.plan(now)
            for unload in plan.unloads:
                self.sim.unload(unload.model_id, unload.gpu)
                self.s.unload_finished(unload.model_id, unload.gpu)
            for load in plan.loads:
                self.sim.start_load(load.model_id, load.gpu, now)
            for dispatch in plan.dispatches:
                assert dispatch.gpu is not None
                self.sim.start_job(dispatch.job_id, dispatch.gpu, now)
            if not plan.unloads:
                break


class _OneReplicaPerModel:
    """Bookkeeping shared by the baselines: at most one replica per model, one job each."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.ready: dict[str, GpuRef] = {}
        self.loading: dict[str, GpuRef] = {}
        self.busy: set[str] = set()
        self.idle_since: dict[str, float] = {}

    def load_done(self, model_id: str, gpu: GpuRef, ok: bool, now: float) -> None:
        self.loading.pop(model_id, None)
        if ok:
            self.ready[model_id], self.idle_since[model_id] = gpu, now

    def job_done(self, job: Job, now: float) -> None:
        self.busy.discard(job.model_id)
        self.idle_since[job.model_id] = now

    def dispatch(self, job: Job, now: float) -> None:
        self.busy.add(job.model_id)
        self.sim.start_job(job.job_id, self.ready[job.model_id], now)

    def idle_models(self, gpu: GpuRef) -> list[str]:
        """Resident models on `gpu` with no job running, longest idle first."""
        idle = [m for m, g in self.ready.items() if g == gpu and m not in self.busy]
        return sorted(idle, key=lambda m: self.idle_since[m])

    def evict(self, model_id: str) -> None:
        self.sim.unload(model_id, self.ready.pop(model_id))


class Fifo(_OneReplicaPerModel):
    """Strict global FIFO with longest-idle eviction and a fixed retry sleep."""

    def __init__(self, sim: Sim, retry_s: float) -> None:
        super().__init__(sim)
        self.queue: deque[Job] = deque()
        self.retry_s, self.asleep_until = retry_s, -1.0

    def arrive(self, job: Job, now: float) -> None:
        self.queue.append(job)

    def _declared_free(self, gpu: GpuRef) -> int:
        held = [m for m, g in (*self.ready.items(), *self.loading.items()) if g == gpu]
        return self.sim.gpus[gpu].total_mib - sum(self.sim.w.vram_mib[m] for m in held)

    def step(self, now: float) -> None:
        while self.queue and now >= self.asleep_until:
            model = self.queue[0].model_id
            if model in self.loading or model in self.busy:
                return  # the head blocks everything behind it
            if model in self.ready:
                self.dispatch(self.queue.popleft(), now)
                continue
            if not self._make_room_and_load(model, now):
                self.asleep_until = now + self.retry_s
                self.sim.at(self.asleep_until, "tick")
            return

    def _make_room_and_load(self, model: str, now: float) -> bool:
        need = self.sim.w.vram_mib[model]
        options = []
        for ref in self.sim.gpus:
            idle = self.idle_models(ref)
            reachable = self._declared_free(ref) + sum(self.sim.w.vram_mib[m] for m in idle)
            if reachable >= need:
                oldest = self.idle_since[idle[0]] if idle else -1.0
                options.append((self._declared_free(ref) < need, oldest, ref))
        if not options:
            return False
        ref = min(options)[2]
        for victim in self.idle_models(ref):
            if self._declared_free(ref) >= need:
                break
            self.evict(victim)
        self.loading[model] = ref
        self.sim.start_load(model, ref, now)
        return True


class Autoscale(_OneReplicaPerModel):
    """Per-model autoscaling (0 or 1 replica) with an idle timeout; models uncoordinated."""

    def __init__(self, sim: Sim, idle_timeout_s: float) -> None:
        super().__init__(sim)
        self.queues: dict[str, deque[Job]] = {}
        self.idle_timeout_s = idle_timeout_s

    def arrive(self, job: Job, now: float) -> None:
        self.queues.setdefault(job.model_id, deque()).append(job)

    def job_done(self, job: Job, now: float) -> None:
        super().job_done(job, now)
        self.sim.at(now + self.idle_timeout_s, "tick")

    def load_done(self, model_id: str, gpu: GpuRef, ok: bool, now: float) -> None:
        super().load_done(model_id, gpu, ok, now)
        self.sim.at(now + self.idle_timeout_s, "tick")

    def step(self, now: float) -> None:
        for model, queue in self.queues.items():
            if queue and model in self.ready and model not in self.busy:
                self.dispatch(queue.popleft(), now)
            elif queue and model not in self.ready and model not in self.loading:
                need = self.sim.w.vram_mib[model]
                free = {r: g.total_mib - g.used_mib() for r, g in self.sim.gpus.items()}
                fits = [r for r, f in free.items() if f >= need]
                if fits:  # the emptiest GPU that reports room now
                    ref = max(fits, key=lambda r: free[r])
                    self.loading[model] = ref
                    self.sim.start_load(model, ref, now)
        for model in list(self.ready):
            idle = model not in self.busy and not self.queues.get(model)
            if idle and now - self.idle_since[model] >= self.idle_timeout_s:
                self.sim.unload(model, self.ready.pop(model))


def p95(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.95 * len(values)))] if values else float("nan")


def servable(workload: Workload, gpus: str) -> list[Job]:
    """Jobs whose model fits the largest GPU at all; the others no policy could run."""
    largest = parse_simulated_inventory(gpus).largest().mib
    return [j for j in workload.jobs if workload.vram_mib[j.model_id] <= largest]


class Pooled:
    """A reference, not a policy anyone could run: every model resident on every GPU and
    no loads, so each job runs on the first idle GPU in arrival order. What is left of
    its latency is queueing for compute alone."""

    def __init__(self, sim: Sim) -> None:
        self.sim, self.queue = sim, deque[Job]()

    def arrive(self, job: Job, now: float) -> None:
        self.queue.append(job)

    def load_done(self, model_id: str, gpu: GpuRef, ok: bool, now: float) -> None:
        return None

    def job_done(self, job: Job, now: float) -> None:
        return None

    def step(self, now: float) -> None:
        for ref, gpu in self.sim.gpus.items():
            if self.queue and not gpu.jobs:
                self.sim.start_job(self.queue.popleft().job_id, ref, now)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def print_table(results: list[Result], served: list[Job], n_gpus: int, wall_s: float) -> None:
    """One table, then the lower bounds and the ratios the targets are stated in."""
    total_service = sum(j.service_s for j in served)
    bound = total_service / n_gpus
    mean_service = total_service / len(served) if served else float("nan")
    makespan_floor = max(bound, max((j.arrival_s + j.service_s for j in served), default=0.0))
    print(
        f"{'policy':<10}{'mean s':>9}{'p95 s':>9}{'makespan s':>12}{'GPU busy':>10}"
        f"{'loads':>7}{'unloads':>8}{'overcommit':>11}{'rejected':>9}{'unfinished':>11}"
    )
    for r in results:
        print(
            f"{r.name:<10}{_mean(r.latencies):>9.1f}{p95(r.latencies):>9.1f}{r.makespan_s:>12.0f}"
            f"{r.busy:>10.2f}{r.loads:>7}{r.unloads:>8}{r.overcommits:>11}"
            f"{r.rejected:>9}{r.unfinished:>11}"
        )
    by_name = {r.name: r for r in results}
    ours, fifo, pooled = by_name["ours"], by_name["fifo"], by_name["pooled*"]
    rows = [
        ("lower bound = total service / GPUs", f"{bound:.0f} s"),
        ("mean service time (latency floor)", f"{mean_service:.1f} s"),
        ("makespan floor = max(bound, last arrival + service)", f"{makespan_floor:.0f} s"),
        (
            "ours mean latency / lower bound (target <= 1.25)",
            f"{_mean(ours.latencies) / bound:.3f}",
        ),
        ("ours makespan / lower bound", f"{ours.makespan_s / bound:.3f}"),
        ("ours makespan / makespan floor", f"{ours.makespan_s / makespan_floor:.3f}"),
        ("ours mean latency / mean service", f"{_mean(ours.latencies) / mean_service:.3f}"),
        ("pooled* mean latency / mean service", f"{_mean(pooled.latencies) / mean_service:.3f}"),
        ("p95(fifo) / p95(ours) (target >= 2)", f"{p95(fifo.latencies) / p95(ours.latencies):.2f}"),
    ]
    print()
    for label, value in rows:
        print(f"{label:<52}{value:>10}")
    print(
        f"\n{len(served)} jobs on {n_gpus} GPUs, simulated in {wall_s:.1f} s. pooled* = every "
        "model resident on every GPU, no loads: unattainable, shows queueing alone."
    )


def run_all(
    workload: Workload, gpus: str, margin_mib: int, retry_s: float, idle_s: float
) -> list[Result]:
    """Replay the same workload under every policy and the pooled reference."""
    makers: list[tuple[str, Callable[[Sim], Policy]]] = [
        ("ours", lambda s: Ours(s, margin_mib)),
        ("fifo", lambda s: Fifo(s, retry_s)),
        ("autoscale", lambda s: Autoscale(s, idle_s)),
        ("pooled*", Pooled),
    ]
    jobs = servable(workload, gpus)
    results = []
    for name, make in makers:
        result = Sim(Workload(jobs, workload.vram_mib, workload.load_s), gpus).run(name, make)
        result.rejected += len(workload.jobs) - len(jobs)  # no GPU is large enough
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gpus", default="4x24576", help="simulated GPUs, e.g. 4x24576")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", default="60%", help="arrivals/s, or offered load like 60%%")
    parser.add_argument("--trace", type=Path, help="JSON list of {arrival_s, model_id, service_s}")
    parser.add_argument("--margin-mib", type=int, default=64, help="our safety margin per GPU")
    parser.add_argument("--retry-s", type=float, default=5.0, help="fifo's retry sleep")
    parser.add_argument("--idle-timeout-s", type=float, default=60.0, help="autoscale's timeout")
    args = parser.parse_args(argv)
    n_gpus = len(parse_simulated_inventory(args.gpus))
    if args.trace:
        workload = load_trace(args.trace, args.seed)
    else:
        workload = make_workload(args.seed, args.jobs, n_gpus, args.rate)
    started = time.perf_counter()
    results = run_all(workload, args.gpus, args.margin_mib, args.retry_s, args.idle_timeout_s)
    wall_s = time.perf_counter() - started
    print_table(results, servable(workload, args.gpus), n_gpus, wall_s)


if __name__ == "__main__":
    main()
