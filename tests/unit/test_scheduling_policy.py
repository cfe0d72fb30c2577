"""The scheduler's decisions: no head-of-line blocking, LRU eviction, warm cache, and
the refusals (busy or queued models are never evicted, impossible models fail fast)."""

from __future__ import annotations

import pytest

from scheduling.config import SchedulerConfig
from scheduling.decisions import Plan, UnloadReason, WaitReason
from scheduling.errors import ModelTooLarge, NotAGpuModel, ReplicaBusy, UnknownModel
from scheduling.ids import GpuRef
from scheduling.inventory import GpuInfo, parse_simulated_inventory
from scheduling.ledger import ReplicaState
from scheduling.models import ModelProfile
from scheduling.policy import Scheduler
from scheduling.resources import Vram

G0, G1 = GpuRef("local", 0), GpuRef("local", 1)


def make(gpus: str, models: dict[str, int], **config: object) -> Scheduler:
    profiles = [ModelProfile(m, Vram(v), load_time_s=30.0) for m, v in models.items()]
    cfg = SchedulerConfig(margin=Vram(512), **config)  # type: ignore[arg-type]
    return Scheduler(parse_simulated_inventory(gpus), profiles, cfg)


def execute(s: Scheduler, plan: Plan, now: float) -> None:
    """Carry out a plan instantly: unloads finish, loads finish."""
    for unload in plan.unloads:
        s.unload_finished(unload.model_id, unload.gpu)
    for load in plan.loads:
        s.load_finished(load.model_id, load.gpu, now)


def warm(s: Scheduler, model: str, gpu: GpuRef, now: float) -> None:
    s.load(model, now, gpu)
    s.load_finished(model, gpu, now)


def run_job(s: Scheduler, job: str, model: str, start: float, end: float) -> None:
    s.submit(job, model, now=start)
    plan = s.plan(start)
    assert [d.job_id for d in plan.dispatches] == [job]
    s.job_finished(job, end)


def resident(s: Scheduler, gpu: GpuRef) -> set[str]:
    return {r.model_id for r in s.ledger.gpu(gpu).replicas()}


def test_waiting_model_never_blocks_a_model_that_can_run() -> None:
    s = make("2x24576", {"a": 20000, "c": 10000, "huge": 23000})
    warm(s, "a", G0, 0.0)
    warm(s, "c", G1, 0.0)
    s.submit("a1", "a", now=100.0)
    assert s.plan(100.0).dispatches  # a is busy on G0
    s.submit("h1", "huge", now=101.0)  # oldest waiting job, cannot get room now
    s.submit("c1", "c", now=102.0)
    plan = s.plan(103.0)
    assert [d.job_id for d in plan.dispatches] == ["c1"]
    assert plan.unloads == [] and plan.loads == []  # c was about to run: never evicted
    assert plan.waiting == {"h1": WaitReason.WAITING_FOR_VRAM}


def test_small_model_loads_while_big_one_waits_for_room() -> None:
    s = make("1x24576", {"a": 20000, "huge": 23000, "small": 3000}, max_jobs_per_gpu=0)
    warm(s, "a", G0, 0.0)
    s.submit("a1", "a", now=1.0)
    s.plan(1.0)
    s.submit("h1", "huge", now=2.0)
    s.submit("s1", "small", now=3.0)
    plan = s.plan(3.0)
    assert [(ld.model_id, ld.gpu) for ld in plan.loads] == [("small", G0)]
    execute(s, plan, 4.0)
    plan = s.plan(4.0)
    assert [d.job_id for d in plan.dispatches] == ["s1"]
    assert plan.waiting["h1"] is WaitReason.WAITING_FOR_VRAM


def test_evicts_least_recently_used_idle_models_first() -> None:
    s = make("1x24576", {"x": 7000, "y": 7000, "z": 7000, "w": 7000, "v": 11000})
    for m in ("x", "y", "z"):
        warm(s, m, G0, 0.0)
    run_job(s, "jy", "y", 100.0, 110.0)
    run_job(s, "jx", "x", 120.0, 130.0)
    run_job(s, "jz", "z", 140.0, 150.0)  # LRU order now: y, x, z
    s.submit("jw", "w", now=200.0)
    plan = s.plan(200.0)
    assert [(u.model_id, u.reason) for u in plan.unloads] == [("y", UnloadReason.MAKE_ROOM)]
    assert s.wait_reason("jw") is WaitReason.WAITING_FOR_UNLOAD
    execute(s, plan, 200.0)
    plan = s.plan(200.0)
    assert [ld.model_id for ld in plan.loads] == ["w"]
    execute(s, plan, 230.0)
    s.plan(230.0)
    s.job_finished("jw", 300.0)
    s.submit("jv", "v", now=400.0)  # needs 11000: evicts x then z (w is most recent)
    plan = s.plan(400.0)
    assert [u.model_id for u in plan.unloads] == ["x", "z"]
    assert s.counters["evictions"] == 3


def test_never_evicts_a_model_with_jobs_in_flight() -> None:
    s = make("1x24576", {"a": 20000, "b": 10000})
    warm(s, "a", G0, 0.0)
    s.submit("a1", "a", now=100.0)
    s.plan(100.0)
    s.submit("b1", "b", now=101.0)
    for t in (101.0, 150.0, 500.0):
        plan = s.plan(t)
        assert plan.unloads == [] and plan.loads == []
        assert plan.waiting == {"b1": WaitReason.WAITING_FOR_VRAM}
    with pytest.raises(ReplicaBusy):
        s.unload("a", G0, 500.0)
    s.job_finished("a1", 600.0)
    plan = s.plan(600.0)
    assert [u.model_id for u in plan.unloads] == ["a"]
    execute(s, plan, 600.0)
    assert [ld.model_id for ld in s.plan(600.0).loads] == ["b"]


def test_warm_cache_kept_while_there_is_room() -> None:
    s = make("2x24576", {"a": 10000, "b": 10000, "c": 12000})
    warm(s, "a", G0, 0.0)
    run_job(s, "a1", "a", 1.0, 2.0)
    for i, (model, t) in enumerate([("b", 10_000.0), ("c", 20_000.0)]):
        s.submit(f"j{i}", model, now=t)
        plan = s.plan(t)
        assert plan.unloads == [] and len(plan.loads) == 1
        execute(s, plan, t + 30)
        s.plan(t + 30)
        s.job_finished(f"j{i}", t + 60)
    assert {"a", "b", "c"} <= resident(s, G0) | resident(s, G1)
    assert s.counters["evictions"] == 0


def test_prefers_a_gpu_where_the_model_fits_without_eviction() -> None:
    s = make("2x24576", {"a": 20000, "b": 10000})
    warm(s, "a", G0, 0.0)  # idle, evictable, but G1 is empty
    s.submit("b1", "b", now=1000.0)
    plan = s.plan(1000.0)
    assert plan.unloads == [] and [(ld.model_id, ld.gpu) for ld in plan.loads] == [("b", G1)]


def test_recently_loaded_model_is_evicted_only_when_nothing_else_will_do() -> None:
    s = make("2x24576", {"old": 20000, "new": 20000, "c": 10000}, min_resident_s=300.0)
    warm(s, "old", G0, 0.0)
    warm(s, "new", G1, 900.0)
    s.submit("c1", "c", now=1000.0)
    plan = s.plan(1000.0)
    assert [(u.model_id, u.gpu) for u in plan.unloads] == [("old", G0)]


def test_impossible_model_is_refused_at_submission() -> None:
    s = make("2x24576", {"fits": 24064, "too_big": 24065})
    assert s.fits_anywhere("fits")
    assert not s.fits_anywhere("too_big")
    with pytest.raises(ModelTooLarge) as err:
        s.submit("j", "too_big", now=0.0)
    assert err.value.largest_room == Vram(24064)
    assert "j" not in s.queues
    with pytest.raises(UnknownModel):
        s.submit("k", "nope", now=0.0)


def test_owners_share_a_model_round_robin() -> None:
    s = make("1x24576", {"a": 10000})
    warm(s, "a", G0, 0.0)
    for i in range(3):
        s.submit(f"alice{i}", "a", now=float(i), owner="alice")
    s.submit("bob0", "a", now=5.0, owner="bob")
    order: list[str] = []
    t = 10.0
    while len(order) < 4:
        plan = s.plan(t)
        order += [d.job_id for d in plan.dispatches]
        for d in plan.dispatches:
            s.job_finished(d.job_id, t + 1)
        t += 2
    assert order == ["alice0", "bob0", "alice1", "alice2"]


def test_priority_orders_jobs_and_models() -> None:
    s = make("1x24576", {"a": 20000, "b": 20000})
    s.submit("a_low", "a", now=0.0)
    s.submit("b_high", "b", now=1.0, priority=5)
    plan = s.plan(2.0)
    assert [ld.model_id for ld in plan.loads] == ["b"]  # only one fits: priority wins


def test_one_job_per_gpu_by_default() -> None:
    s = make("1x24576", {"a": 10000, "b": 10000})
    warm(s, "a", G0, 0.0)
    warm(s, "b", G0, 0.0)
    s.submit("a1", "a", now=1.0)
    s.submit("b1", "b", now=2.0)
    plan = s.plan(2.0)
    assert [d.job_id for d in plan.dispatches] == ["a1"]
    assert plan.waiting == {"b1": WaitReason.WAITING_FOR_GPU}


def test_backlog_gets_a_second_replica() -> None:
    s = make("2x24576", {"hot": 10000})
    warm(s, "hot", G0, 0.0)
    for i in range(4):
        s.submit(f"j{i}", "hot", now=1.0)
    plan = s.plan(1.0)
    assert len(plan.dispatches) == 1
    assert [(ld.model_id, ld.gpu) for ld in plan.loads] == [("hot", G1)]
    assert s.wait_reason("j1") is WaitReason.WAITING_FOR_REPLICA


def test_lost_replica_frees_its_memory_and_returns_its_jobs() -> None:
    s = make("1x24576", {"a": 20000})
    warm(s, "a", G0, 0.0)
    s.submit("a1", "a", now=1.0)
    s.plan(1.0)
    assert s.replica_lost("a", G0) == ["a1"]
    assert s.ledger.gpu(G0).committed == Vram(0)
    s.submit("a1", "a", now=2.0, front=True)  # the caller retries it
    assert [ld.model_id for ld in s.plan(2.0).loads] == ["a"]


def test_failed_load_releases_its_reservation() -> None:
    s = make("1x24576", {"a": 20000})
    s.submit("a1", "a", now=0.0)
    plan = s.plan(0.0)
    assert s.ledger.gpu(G0).reserved == Vram(20000)
    s.load_finished("a", plan.loads[0].gpu, 10.0, ok=False)
    assert s.ledger.gpu(G0).committed == Vram(0)
    assert s.counters["load_failures"] == 1
    assert [ld.model_id for ld in s.plan(11.0).loads] == ["a"]  # and it is tried again


def test_foreign_memory_growth_evicts_idle_models() -> None:
    s = make("1x24576", {"a": 10000, "b": 10000})
    warm(s, "a", G0, 0.0)
    warm(s, "b", G0, 5.0)
    s.update_gpu(GpuInfo("local", 0, 24576, 0, 8000))
    plan = s.plan(10.0)
    assert [(u.model_id, u.reason) for u in plan.unloads] == [("a", UnloadReason.FOREIGN_MEMORY)]


def test_manual_load_and_unload() -> None:
    s = make("2x24576", {"a": 20000, "b": 20000})
    first = s.load("a", 0.0)
    s.load_finished("a", first.gpu, 1.0)
    second = s.load("b", 1.0)
    assert second.gpu != first.gpu
    unload = s.unload("a", first.gpu, 2.0)
    assert unload.reason is UnloadReason.MANUAL
    assert s.ledger.gpu(first.gpu).get("a").state is ReplicaState.UNLOADING  # type: ignore[union-attr]


def test_snapshot_shows_ledger_replicas_queues_and_counters() -> None:
    s = make("2x24576", {"a": 20000, "b": 8000})
    warm(s, "a", G0, 0.0)
    s.submit("j", "b", now=1.0)
    s.plan(1.0)
    snap = s.snapshot(2.0)
    g0 = snap["gpus"][0]
    assert g0["gpu"] == "local:0" and g0["used_mib"] == 20000
    assert g0["free_mib"] == 24576 - 512 - 20000
    assert snap["models"]["b"]["queued"] == 1
    assert snap["models"]["b"]["waiting_reason"] == "loading"
    assert snap["models"]["b"]["replicas"][0]["state"] == "loading"
    assert snap["counters"]["loads"] == 2 and snap["counters"]["evictions"] == 0


def test_cpu_models_share_the_queues_without_touching_the_ledger() -> None:
    s = make("1x24576", {"gpu_model": 20000})
    s.add_model(ModelProfile("cpu_model", Vram(0), max_concurrency=2))
    assert s.fits_anywhere("cpu_model")
    for i in range(3):
        s.submit(f"c{i}", "cpu_model", now=float(i))
    plan = s.plan(5.0)
    assert [(d.job_id, d.gpu) for d in plan.dispatches] == [("c0", None), ("c1", None)]
    assert plan.loads == [] and plan.waiting == {"c2": WaitReason.WAITING_FOR_REPLICA}
    s.job_finished("c0", 6.0)
    assert [d.job_id for d in s.plan(6.0).dispatches] == ["c2"]
    assert s.ledger.gpu(G0).committed == Vram(0)
    with pytest.raises(NotAGpuModel):
        s.load("cpu_model", 7.0)
