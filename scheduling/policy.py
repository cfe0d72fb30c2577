"""The scheduler: state in, typed decisions out.

`Scheduler` owns the ledger and the queues and turns them into a `Plan` on every
`plan(now)`: dispatches to ready replicas, loads, and the unloads that make room for
them. It performs nothing itself; the caller (the job-manager actor, or the simulator)
executes the decisions and reports back (`load_finished`, `unload_finished`,
`job_finished`, `replica_lost`, `update_gpu`). Decisions are booked in the ledger when
they are made (a load reserves its VRAM, a dispatch takes a slot), so a plan never
counts on memory or slots an earlier plan already gave away.

Rules, in the order `plan` applies them:

1. Foreign memory grew past a GPU's budget: evict idle models there (LRU) until it fits.
2. Dispatch queued jobs to ready replicas with a free slot, most urgent model first
   (head job's priority, then its age). By default a GPU runs one job at a time
   (`max_jobs_per_gpu`): co-resident models time-share its compute, so a second job
   would slow both; queueing it keeps the first one's latency and, for the low-variance
   service times of these models, finishes both sooner on average. Models are otherwise
   independent: a model waiting for VRAM never delays another model's jobs.
3. Loads that were waiting for unloads go ahead once the room is there.
4. Models with queued jobs and no replica get one, most urgent first; room is made by
   evicting idle models, least recently used first, never one with jobs in flight or
   queued, and models loaded in the last `min_resident_s` only if nothing else will do.
5. A model whose backlog would drain slower than a new replica loads gets one more
   replica (evicting only idle models not loaded recently).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scheduling.config import SchedulerConfig
from scheduling.decisions import (
    Dispatch,
    Load,
    Plan,
    Unload,
    UnloadReason,
    WaitReason,
    wait_reason_for,
)
from scheduling.errors import ModelTooLarge, NoHost, NotAGpuModel, UnknownModel
from scheduling.ids import GpuRef, JobId, ModelId, OwnerId
from scheduling.inventory import GpuInfo, GpuInventory
from scheduling.ledger import Ledger, Replica, ReplicaState
from scheduling.models import ModelProfile
from scheduling.placement import Placement, PlacementRules, choose_gpu, wants_scale_out
from scheduling.queue import JobQueues
from scheduling.resources import Vram
from scheduling.status import snapshot

__all__ = ["Scheduler", "SchedulerConfig"]


@dataclass
class _Running:
    model_id: ModelId
    gpu: GpuRef | None  # None: a CPU model's job
    started_at: float


@dataclass
class _Intent:
    """A load decided but waiting for the unloads that make its room."""

    gpu: GpuRef
    vram: Vram
    since: float


class Scheduler:
    """VRAM-aware scheduling of jobs onto model replicas across GPUs."""

    def __init__(
        self,
        inventory: GpuInventory,
        models: Iterable[ModelProfile] = (),
        config: SchedulerConfig | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self.ledger = Ledger(inventory, self.config.margin)
        self.queues = JobQueues()
        self.profiles: dict[ModelId, ModelProfile] = {}
        self.counters: Counter[str] = Counter()
        self._running: dict[JobId, _Running] = {}
        self._intents: dict[ModelId, _Intent] = {}
        self._service_s: dict[ModelId, float] = {}
        self._reasons: dict[ModelId, WaitReason] = {}
        self._hosts: dict[ModelId, frozenset[GpuRef]] = {}
        for profile in models:
            self.add_model(profile)

    # ---- models and admission ---------------------------------------------------------
    def add_model(self, profile: ModelProfile) -> None:
        """Register (or replace) a model's profile."""
        self.profiles[profile.model_id] = profile
        self._service_s.setdefault(profile.model_id, profile.service_time_s)

    def set_hosts(self, model_id: ModelId, gpus: Iterable[GpuRef] | None) -> None:
        """Restrict where the model may be loaded to `gpus` (None lifts the restriction).

        In a Ray cluster, Ray places each model's replicas (fractional `num_gpus`) and the
        weights are loaded into them by hook, so a model can only become resident on a GPU
        that hosts one of its replicas. The simulator places freely."""
        if gpus is None:
            self._hosts.pop(model_id, None)
        else:
            self._hosts[model_id] = frozenset(gpus)

    def profile(self, model_id: ModelId) -> ModelProfile:
        try:
            return self.profiles[model_id]
        except KeyError:
            raise UnknownModel(model_id) from None

    def fits_anywhere(self, model: ModelId | ModelProfile) -> bool:
        """Whether some GPU, emptied, could hold the model; if not, its jobs must fail
        at submission with INSUFFICIENT_VRAM instead of waiting forever."""
        profile = model if isinstance(model, ModelProfile) else self.profile(model)
        return not profile.needs_gpu or self.ledger.fits_anywhere(profile.vram)

    def submit(
        self,
        job_id: JobId,
        model_id: ModelId,
        *,
        now: float,
        priority: int = 0,
        owner: OwnerId = "",
        front: bool = False,
    ) -> None:
        """Queue a job. Raises `UnknownModel`, or `ModelTooLarge` if no GPU could ever
        hold the model. `front` keeps a retried job's turn."""
        profile = self.profile(model_id)
        if not self.fits_anywhere(profile):
            raise ModelTooLarge(model_id, profile.vram, self.ledger.largest_room())
        self.queues.push(job_id, model_id, priority, front, owner=owner, now=now)

    def cancel(self, job_id: JobId) -> bool:
        """Drop a queued job; a running one is ended with `job_finished` by the caller."""
        return self.queues.remove(job_id)

    # ---- reports from the caller ----------------------------------------------------
    def job_finished(self, job_id: JobId, now: float) -> None:
        """A dispatched job ended (completed, failed or cancelled); its slot is free."""
        run = self._running.pop(job_id, None)
        if run is None:
            return
        if run.gpu is not None and self.ledger.gpu(run.gpu).get(run.model_id) is not None:
            self.ledger.gpu(run.gpu).release(run.model_id, now)
        weight, took = self.config.service_ewma_weight, now - run.started_at
        old = self._service_s.get(run.model_id, took)
        self._service_s[run.model_id] = (1 - weight) * old + weight * took

    def load_finished(self, model_id: ModelId, gpu: GpuRef, now: float, ok: bool = True) -> None:
        """A `Load` completed (the replica is ready) or failed (its reservation is freed)."""
        ledger = self.ledger.gpu(gpu)
        if ok:
            ledger.mark_ready(model_id, now)
        else:
            ledger.remove(model_id)
            self.counters["load_failures"] += 1

    def unload_finished(self, model_id: ModelId, gpu: GpuRef) -> None:
        """An `Unload` completed: the replica's memory is free."""
        self.ledger.gpu(gpu).remove(model_id)

    def replica_lost(self, model_id: ModelId, gpu: GpuRef) -> list[JobId]:
        """A replica died (crash, node loss): free its ledger entry whatever its state and
        return the jobs that were running on it, for the caller to retry or fail."""
        ledger = self.ledger.gpu(gpu)
        if ledger.get(model_id) is not None:
            ledger.remove(model_id)
            self.counters["replicas_lost"] += 1
        lost = [j for j, r in self._running.items() if r.model_id == model_id and r.gpu == gpu]
        for job_id in lost:
            del self._running[job_id]
        return lost

    def update_gpu(self, info: GpuInfo) -> None:
        """A fresh NVML (or simulated) reading of one GPU."""
        self.ledger.update(info)

    # ---- recovery (the caller restarted and rebuilds its books) ----------------------------
    def adopt(self, model_id: ModelId, gpu: GpuRef, now: float) -> None:
        """Book a replica that is already resident (reported by the replica itself after
        the caller restarted). Raises `VramExceeded` if the books have no room for it."""
        self.ledger.gpu(gpu).reserve(model_id, self.profile(model_id).vram, now)
        self.ledger.gpu(gpu).mark_ready(model_id, now)
        self.counters["adopted"] += 1

    def resume(self, job_id: JobId, model_id: ModelId, gpu: GpuRef | None, now: float) -> None:
        """Book a job that was already running before the caller restarted."""
        if job_id in self._running:
            return
        if gpu is not None:
            self.ledger.gpu(gpu).acquire(model_id, now)
        self._running[job_id] = _Running(model_id, gpu, now)

    # ---- manual operations (admin routes) ---------------------------------------------
    def load(self, model_id: ModelId, now: float, gpu: GpuRef | None = None) -> Load:
        """Load a model by hand, on `gpu` or wherever it fits without evicting anything.
        Raises `VramExceeded` (or `ReplicaExists`) if it cannot."""
        profile = self.profile(model_id)
        if not profile.needs_gpu:
            raise NotAGpuModel(f"{model_id!r} needs no GPU")
        if gpu is None:
            placement = self._choose(profile, now, allow_evict=False, allow_recent=False)
            if placement is not None and placement.immediate:
                gpu = placement.gpu
            else:  # reserve() raises VramExceeded with the best room there is
                hosts = self._hosts.get(model_id)
                candidates = [g for g in self.ledger if hosts is None or g.ref in hosts]
                if not candidates:
                    raise NoHost(model_id)
                gpu = max(candidates, key=lambda g: g.load_room.mib).ref
        elif (hosts := self._hosts.get(model_id)) is not None and gpu not in hosts:
            raise NoHost(model_id, gpu)
        return self._reserve(profile, gpu, now)

    def unload(self, model_id: ModelId, gpu: GpuRef, now: float) -> Unload:
        """Unload an idle replica by hand; raises `ReplicaBusy` if jobs are in flight."""
        self.ledger.gpu(gpu).begin_unload(model_id, now)
        self.counters["unloads"] += 1
        return Unload(model_id, gpu, UnloadReason.MANUAL)

    # ---- the decision -------------------------------------------------------------------
    def plan(self, now: float) -> Plan:
        """Decide what to do now; see the module docstring for the rules."""
        plan = Plan()
        self._relieve_overcommit(now, plan)
        self._dispatch(now, plan)
        self._finish_intents(now, plan)
        waiting = [m for m in self._by_urgency() if self.profiles[m].needs_gpu]
        for model_id in waiting:
            if not self.ledger.replicas(model_id) and model_id not in self._intents:
                self._place(model_id, now, plan, scale_out=False)
        if self.config.scale_out:
            for model_id in waiting:
                if self._wants_scale_out(model_id):
                    self._place(model_id, now, plan, scale_out=True)
        plan.waiting = self._wait_reasons()
        return plan

    def _relieve_overcommit(self, now: float, plan: Plan) -> None:
        for gpu in self.ledger:
            idle = sorted((r for r in gpu.replicas() if r.idle), key=lambda r: r.last_used)
            for replica in idle:
                if gpu.unloading.can_fit(gpu.overcommit):  # unloads under way will do
                    break
                self._evict(replica, now, plan, UnloadReason.FOREIGN_MEMORY)

    def _free_replica(self, profile: ModelProfile) -> Replica | None:
        """The ready replica with a free slot on the least busy GPU, if any."""
        cap = self.config.max_jobs_per_gpu
        free = [
            r
            for r in self.ledger.replicas(profile.model_id)
            if r.state is ReplicaState.READY
            and r.in_flight < profile.max_concurrency
            and (not cap or self.ledger.gpu(r.gpu).in_flight < cap)
        ]
        return min(free, key=lambda r: (self.ledger.gpu(r.gpu).in_flight, r.gpu), default=None)

    def _dispatch(self, now: float, plan: Plan) -> None:
        for model_id in self._by_urgency():
            profile = self.profiles[model_id]
            while self.queues.length(model_id):
                gpu: GpuRef | None = None
                if profile.needs_gpu:
                    replica = self._free_replica(profile)
                    if replica is None:
                        break
                    gpu = replica.gpu
                    self.ledger.gpu(gpu).acquire(model_id, now)
                elif self.in_flight(model_id) >= profile.max_concurrency:
                    break
                job = self.queues.pop(model_id)
                assert job is not None
                self._running[job.job_id] = _Running(model_id, gpu, now)
                plan.dispatches.append(Dispatch(job.job_id, model_id, gpu))
                self.counters["dispatches"] += 1

    def _finish_intents(self, now: float, plan: Plan) -> None:
        """Start the loads whose room the unloads have now freed; drop stale intents."""
        gpus = {g.ref for g in self.ledger}
        for model_id, intent in list(self._intents.items()):
            if not self.queues.length(model_id) or intent.gpu not in gpus:
                del self._intents[model_id]
            elif self.ledger.gpu(intent.gpu).get(model_id) is not None:
                del self._intents[model_id]  # placed meanwhile (a manual load)
            elif self.ledger.gpu(intent.gpu).load_room.can_fit(intent.vram):
                del self._intents[model_id]
                plan.loads.append(self._reserve(self.profiles[model_id], intent.gpu, now))
            elif now - intent.since > self.config.intent_timeout_s:
                del self._intents[model_id]

    def _place(self, model_id: ModelId, now: float, plan: Plan, scale_out: bool) -> None:
        """Load a replica where `choose_gpu` says, evicting its victims first if needed."""
        profile = self.profiles[model_id]
        placement = self._choose(profile, now, allow_evict=True, allow_recent=not scale_out)
        if placement is None:
            return
        if placement.immediate:
            plan.loads.append(self._reserve(profile, placement.gpu, now))
            return
        for victim in placement.victims:
            self._evict(victim, now, plan, UnloadReason.MAKE_ROOM)
        self._intents[model_id] = _Intent(placement.gpu, profile.vram, now)

    def _choose(
        self, profile: ModelProfile, now: float, allow_evict: bool, allow_recent: bool
    ) -> Placement | None:
        claimed: dict[GpuRef, Vram] = {}
        for intent in self._intents.values():
            claimed[intent.gpu] = claimed.get(intent.gpu, Vram(0)) + intent.vram
        rules = PlacementRules(
            evictable=lambda r: not self.queues.length(r.model_id),
            now=now,
            min_resident_s=self.config.min_resident_s,
            allow_evict=allow_evict,
            allow_recent=allow_recent,
        )
        hosts = self._hosts.get(profile.model_id)
        gpus = [g for g in self.ledger if hosts is None or g.ref in hosts]
        return choose_gpu(gpus, profile.model_id, profile.vram, claimed, rules)

    def _reserve(self, profile: ModelProfile, gpu: GpuRef, now: float) -> Load:
        self.ledger.gpu(gpu).reserve(profile.model_id, profile.vram, now)
        self.counters["loads"] += 1
        return Load(profile.model_id, gpu, profile.vram)

    def _evict(self, replica: Replica, now: float, plan: Plan, reason: UnloadReason) -> None:
        self.ledger.gpu(replica.gpu).begin_unload(replica.model_id, now)
        plan.unloads.append(Unload(replica.model_id, replica.gpu, reason))
        self.counters["evictions"] += 1
        self.counters["unloads"] += 1

    def _wants_scale_out(self, model_id: ModelId) -> bool:
        if model_id in self._intents:
            return False
        cap = self.config.max_replicas_per_model or len(self.ledger)
        return wants_scale_out(
            self.ledger.replicas(model_id),
            self.profiles[model_id],
            self.queues.length(model_id),
            self._service_s[model_id],
            cap,
        )

    def _by_urgency(self) -> list[ModelId]:
        return [m for m in self.queues.by_urgency() if m in self.profiles]

    def _wait_reasons(self) -> dict[JobId, WaitReason]:
        waiting: dict[JobId, WaitReason] = {}
        self._reasons = {}
        for model_id in self.queues.models():
            reason = self._reason(model_id)
            self._reasons[model_id] = reason
            for job in self.queues.jobs(model_id):
                waiting[job.job_id] = reason
        return waiting

    def _reason(self, model_id: ModelId) -> WaitReason:
        profile = self.profiles.get(model_id)
        if profile is not None and not profile.needs_gpu:
            return WaitReason.WAITING_FOR_REPLICA
        slots = profile.max_concurrency if profile else 1
        hosts = self._hosts.get(model_id)
        if hosts is not None and not any(g.ref in hosts for g in self.ledger):
            return WaitReason.WAITING_FOR_PLACEMENT
        return wait_reason_for(self.ledger.replicas(model_id), slots, model_id in self._intents)

    # ---- introspection -----------------------------------------------------------------
    def wait_reason(self, job_id: JobId) -> WaitReason | None:
        """Why a queued job waits (as of the last plan); None if it is not queued."""
        model_id = self.queues.model_of(job_id)
        if model_id is None:
            return None
        return self._reasons.get(model_id) or self._reason(model_id)

    def running_on(self, job_id: JobId) -> GpuRef | None:
        """The GPU a dispatched job runs on; None if it is not running (or is a CPU job)."""
        run = self._running.get(job_id)
        return run.gpu if run else None

    def in_flight(self, model_id: ModelId | None = None) -> int:
        """Jobs running, of one model or of all."""
        return sum(1 for r in self._running.values() if model_id in (None, r.model_id))

    def service_estimate_s(self, model_id: ModelId) -> float:
        """Running estimate of the model's job duration (prior: its profile)."""
        return self._service_s[model_id]

    def snapshot(self, now: float) -> dict[str, Any]:
        """State for the scheduler-status route (see `scheduling.status`)."""
        return snapshot(self, now)
