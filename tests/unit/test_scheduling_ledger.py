"""The VRAM ledger: its invariant under random operations, and the refusals."""

from __future__ import annotations

import random

import pytest

from scheduling.errors import (
    ReplicaBusy,
    ReplicaExists,
    VramExceeded,
    WrongReplicaState,
)
from scheduling.inventory import GpuInfo
from scheduling.ledger import GpuLedger, ReplicaState
from scheduling.resources import Vram

TOTAL = 24576
MARGIN = Vram(512)


def fresh(total: int = TOTAL, others: int = 0) -> GpuLedger:
    return GpuLedger(GpuInfo("n", 0, total, total - others, others), MARGIN)


def refresh(gpu: GpuLedger, others: int = 0) -> None:
    """A truthful NVML reading: what our resident replicas and others hold is not free."""
    used = gpu.resident.mib + others
    gpu.update(GpuInfo("n", 0, TOTAL, max(0, TOTAL - used), others))


def random_step(rng: random.Random, gpu: GpuLedger, now: float) -> None:
    """One random operation; refusals are fine, breaking the books is not."""
    models = [f"m{i}" for i in range(6)]
    model = rng.choice(models)
    op = rng.choice(["reserve", "ready", "acquire", "release", "unload", "remove"])
    try:
        if op == "reserve":
            gpu.reserve(model, Vram(rng.randrange(1, 14000)), now)
        elif op == "ready":
            gpu.mark_ready(model, now)
        elif op == "acquire":
            gpu.acquire(model, now)
        elif op == "release":
            gpu.release(model, now)
        elif op == "unload":
            gpu.begin_unload(model, now)
        elif op == "remove":
            gpu.remove(model)
    except (VramExceeded, ReplicaExists, ReplicaBusy, WrongReplicaState, KeyError):
        pass


@pytest.mark.parametrize("seed", range(20))
def test_invariant_holds_under_random_operations(seed: int) -> None:
    rng = random.Random(seed)
    gpu = fresh()
    for step in range(400):
        random_step(rng, gpu, float(step))
        if rng.random() < 0.2:
            refresh(gpu)
        assert gpu.committed.mib <= TOTAL - MARGIN.mib
        assert gpu.invariant_holds()
        assert gpu.load_room.mib >= 0


def test_reserve_refuses_past_capacity_minus_margin() -> None:
    gpu = fresh()
    gpu.reserve("a", Vram(12000), 0.0)
    with pytest.raises(VramExceeded) as err:
        gpu.reserve("b", Vram(TOTAL - 512 - 12000 + 1), 0.0)
    assert err.value.room == Vram(TOTAL - 512 - 12000)
    gpu.reserve("b", Vram(TOTAL - 512 - 12000), 0.0)
    assert gpu.load_room == Vram(0)


def test_reported_free_memory_gates_loads() -> None:
    gpu = fresh()
    # NVML sees 20 GiB used by something the declarations do not know about
    gpu.update(GpuInfo("n", 0, TOTAL, TOTAL - 20480, 0))
    assert gpu.load_room == Vram(TOTAL - 20480 - 512)
    with pytest.raises(VramExceeded):
        gpu.reserve("a", Vram(8000), 0.0)


def test_foreign_memory_shrinks_budget_and_shows_overcommit() -> None:
    gpu = fresh()
    gpu.reserve("a", Vram(20000), 0.0)
    gpu.mark_ready("a", 1.0)
    refresh(gpu, others=6000)
    assert gpu.budget == Vram(TOTAL - 512 - 6000)
    assert gpu.overcommit == Vram(20000 - (TOTAL - 512 - 6000))
    assert not gpu.invariant_holds()


def test_busy_replica_cannot_be_unloaded_and_unloading_keeps_memory() -> None:
    gpu = fresh()
    gpu.reserve("a", Vram(10000), 0.0)
    with pytest.raises(WrongReplicaState):
        gpu.acquire("a", 0.5)  # still loading
    gpu.mark_ready("a", 1.0)
    gpu.acquire("a", 2.0)
    with pytest.raises(ReplicaBusy):
        gpu.begin_unload("a", 3.0)
    gpu.release("a", 4.0)
    replica = gpu.begin_unload("a", 5.0)
    assert replica.state is ReplicaState.UNLOADING
    assert gpu.committed == Vram(10000) and gpu.unloading == Vram(10000)
    gpu.remove("a")
    assert gpu.committed == Vram(0)


def test_one_replica_per_model_per_gpu() -> None:
    gpu = fresh()
    gpu.reserve("a", Vram(1000), 0.0)
    with pytest.raises(ReplicaExists):
        gpu.reserve("a", Vram(1000), 0.0)
