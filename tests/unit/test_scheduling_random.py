"""The scheduler driven by random events: the ledger invariant always holds, no busy or
queued model is ever unloaded, and every job is eventually dispatched (no deadlock)."""

from __future__ import annotations

import random

import pytest

from scheduling.config import SchedulerConfig
from scheduling.decisions import Load, Unload
from scheduling.inventory import parse_simulated_inventory
from scheduling.models import ModelProfile
from scheduling.policy import Scheduler
from scheduling.resources import Vram

MODELS = {"t": 11776, "p": 12288, "h": 10240, "f": 4096, "u": 9216, "v1": 16384, "v4": 24000}
TOTAL, MARGIN = 24576, 512


class Driver:
    """Plays the caller: executes decisions some time later, in random order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        profiles = [ModelProfile(m, Vram(v), load_time_s=20.0) for m, v in MODELS.items()]
        config = SchedulerConfig(margin=Vram(MARGIN), max_jobs_per_gpu=self.rng.choice([0, 1]))
        self.s = Scheduler(parse_simulated_inventory("3x24576"), profiles, config)
        self.loads: list[Load] = []
        self.unloads: list[Unload] = []
        self.running: list[str] = []
        self.submitted = 0
        self.model_of: dict[str, str] = {}
        self.now = 0.0

    def check(self, unloads: list[Unload]) -> None:
        for gpu in self.s.ledger:
            assert gpu.invariant_holds()
            assert gpu.committed.mib <= TOTAL - MARGIN
        for unload in unloads:
            replica = self.s.ledger.gpu(unload.gpu).get(unload.model_id)
            assert replica is not None and replica.in_flight == 0
            assert self.s.queues.length(unload.model_id) == 0

    def plan(self) -> None:
        plan = self.s.plan(self.now)
        self.check(plan.unloads)
        for d in plan.dispatches:
            assert d.gpu is not None and d.job_id not in self.running
            replica = self.s.ledger.gpu(d.gpu).get(d.model_id)
            assert replica is not None and replica.state == "ready"
        self.running += [d.job_id for d in plan.dispatches]
        self.loads += plan.loads
        self.unloads += plan.unloads

    def pop(self, items: list[object]) -> object:
        return items.pop(self.rng.randrange(len(items)))

    def step(self, may_submit: bool) -> None:
        self.now += self.rng.uniform(0.0, 20.0)
        choice = self.rng.random()
        if may_submit and choice < 0.35:
            model = self.rng.choice(list(MODELS))
            owner, prio = self.rng.choice("abc"), self.rng.choice([0, 0, 1])
            job = f"j{self.submitted}"
            self.s.submit(job, model, now=self.now, owner=owner, priority=prio)
            self.model_of[job] = model
            self.submitted += 1
        elif choice < 0.55 and self.running:
            self.s.job_finished(str(self.pop(self.running)), self.now)  # type: ignore[arg-type]
        elif choice < 0.75 and self.loads:
            load = self.pop(self.loads)  # type: ignore[arg-type]
            assert isinstance(load, Load)
            self.s.load_finished(load.model_id, load.gpu, self.now, self.rng.random() > 0.1)
        elif choice < 0.9 and self.unloads:
            unload = self.pop(self.unloads)  # type: ignore[arg-type]
            assert isinstance(unload, Unload)
            self.s.unload_finished(unload.model_id, unload.gpu)
        elif choice < 0.93 and self.running:
            self.lose_a_replica()
        self.plan()

    def lose_a_replica(self) -> None:
        """The replica running the oldest job dies; its jobs are retried."""
        job = self.running[0]
        gpu, model = self.s.running_on(job), self.model_of[job]
        assert gpu is not None
        lost = self.s.replica_lost(model, gpu)
        assert job in lost
        for lost_job in lost:
            self.running.remove(lost_job)
            self.s.submit(lost_job, model, now=self.now, front=True)
        self.loads = [ld for ld in self.loads if (ld.model_id, ld.gpu) != (model, gpu)]
        self.unloads = [u for u in self.unloads if (u.model_id, u.gpu) != (model, gpu)]


@pytest.mark.parametrize("seed", range(12))
def test_random_events_keep_the_books_and_finish_every_job(seed: int) -> None:
    d = Driver(seed)
    for _ in range(300):
        d.step(may_submit=True)
    for _ in range(5000):  # no more arrivals: everything queued must drain
        if not len(d.s.queues) and not d.running:
            break
        d.step(may_submit=False)
    assert len(d.s.queues) == 0 and not d.running
    assert d.s.counters["dispatches"] >= d.submitted
