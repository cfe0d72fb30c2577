"""Per-model queues: priority order, per-owner fairness, retries, and the legacy plan."""

from __future__ import annotations

from scheduling.queue import Dispatch, JobQueues


def drain(q: JobQueues, model: str) -> list[str]:
    out = []
    while (job := q.pop(model)) is not None:
        out.append(job.job_id)
    return out


def test_priority_first_then_arrival() -> None:
    q = JobQueues()
    q.push("low1", "m", 0)
    q.push("high", "m", 5)
    q.push("low2", "m", 0)
    assert q.position("high") == 0 and q.position("low2") == 2
    assert drain(q, "m") == ["high", "low1", "low2"]


def test_owners_take_turns_within_a_model() -> None:
    q = JobQueues()
    for i in range(4):
        q.push(f"a{i}", "m", owner="alice")
    q.push("b0", "m", owner="bob")
    q.push("b1", "m", owner="bob")
    q.push("c0", "m", owner="carol")
    assert drain(q, "m") == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_late_owner_is_not_put_behind_a_long_batch() -> None:
    q = JobQueues()
    for i in range(10):
        q.push(f"a{i}", "m", owner="alice")
    assert q.pop("m").job_id == "a0"  # type: ignore[union-attr]
    assert q.pop("m").job_id == "a1"  # type: ignore[union-attr]
    q.push("b0", "m", owner="bob")
    assert q.position("b0") in (0, 1)


def test_priority_beats_fairness() -> None:
    q = JobQueues()
    q.push("a0", "m", owner="alice")
    q.push("b0", "m", owner="bob")
    q.push("a1", "m", 3, owner="alice")
    assert drain(q, "m") == ["a1", "a0", "b0"]


def test_retry_keeps_its_turn_and_remove() -> None:
    q = JobQueues()
    q.push("j1", "m")
    q.push("j2", "m")
    q.push("retry", "m", front=True)
    assert q.remove("j1") and not q.remove("j1")
    assert "j1" not in q and len(q) == 2
    assert drain(q, "m") == ["retry", "j2"]


def test_by_urgency_orders_models_by_head() -> None:
    q = JobQueues()
    q.push("x", "old", now=1.0)
    q.push("y", "new", now=2.0)
    q.push("z", "urgent", 9, now=3.0)
    assert q.by_urgency() == ["urgent", "old", "new"]


def test_legacy_plan_pops_per_free_slot() -> None:
    q = JobQueues()
    for i in range(3):
        q.push(f"a{i}", "a")
    q.push("b0", "b")
    plan = q.plan({"a": 2, "b": 0})
    assert plan == [Dispatch("a0", "a"), Dispatch("a1", "a")]
    assert q.lengths() == {"a": 1, "b": 1}
