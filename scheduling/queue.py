"""Per-model job queues and the dispatch decision.

One queue per model means a model that cannot take work now never delays jobs of a model
that can (no head-of-line blocking across models). Within a model, higher priority first,
then arrival order.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dispatch:
    """Decision: send `job_id` to a replica of `model_id`."""

    job_id: str
    model_id: str


@dataclass(order=True)
class _Entry:
    sort_key: tuple[int, int]
    job_id: str = field(compare=False)


class JobQueues:
    def __init__(self) -> None:
        self._heaps: dict[str, list[_Entry]] = {}
        self._where: dict[str, str] = {}
        self._seq = itertools.count()

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._where

    def push(self, job_id: str, model_id: str, priority: int = 0, front: bool = False) -> None:
        """Queue a job; `front` puts it ahead of its priority class (a retry keeps its turn)."""
        if job_id in self._where:
            return
        seq = -next(self._seq) if front else next(self._seq)
        heapq.heappush(self._heaps.setdefault(model_id, []), _Entry((-priority, seq), job_id))
        self._where[job_id] = model_id

    def remove(self, job_id: str) -> bool:
        model_id = self._where.pop(job_id, None)
        if model_id is None:
            return False
        heap = self._heaps[model_id]
        heap[:] = [e for e in heap if e.job_id != job_id]
        heapq.heapify(heap)
        return True

    def position(self, job_id: str) -> int | None:
        """0-based place of the job in its model's queue."""
        model_id = self._where.get(job_id)
        if model_id is None:
            return None
        ordered = sorted(self._heaps[model_id])
        return next(i for i, e in enumerate(ordered) if e.job_id == job_id)

    def lengths(self) -> dict[str, int]:
        return {m: len(h) for m, h in self._heaps.items() if h}

    def plan(self, free_slots: dict[str, int]) -> list[Dispatch]:
        """Pop as many jobs per model as it has free slots; models without room are skipped."""
        decisions: list[Dispatch] = []
        for model_id, heap in self._heaps.items():
            for _ in range(max(0, free_slots.get(model_id, 0))):
                if not heap:
                    break
                entry = heapq.heappop(heap)
                del self._where[entry.job_id]
                decisions.append(Dispatch(entry.job_id, model_id))
        return decisions
