"""Per-model job queues with priorities and per-owner fairness.

One queue per model means a model that cannot take work now never delays jobs of a model
that can (no head-of-line blocking across models). Within a model's queue the order is:
higher priority first; within a priority, owners take turns (round robin), so one user's
batch of a hundred jobs does not starve another user's single job; within an owner,
arrival order.

Round robin is done with "rounds" (start-time fair queueing): an owner's n-th waiting job
gets round n, counted from the round being served when it arrived. Ordering by (priority,
round, arrival) is then a plain heap order, so push and pop stay O(log n).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from scheduling.decisions import Dispatch
from scheduling.ids import JobId, ModelId, OwnerId

__all__ = ["Dispatch", "JobQueues", "QueuedJob"]


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting in its model's queue."""

    job_id: JobId
    model_id: ModelId
    priority: int
    owner: OwnerId
    enqueued_at: float


@dataclass(order=True)
class _Entry:
    sort_key: tuple[int, int, int]
    job: QueuedJob = field(compare=False)


class _ModelQueue:
    """The heap of one model plus the fairness rounds of its owners."""

    def __init__(self) -> None:
        self.heap: list[_Entry] = []
        self.serving_round = 0
        self.owner_round: dict[OwnerId, int] = {}

    def push(self, job: QueuedJob, seq: int, front: bool) -> None:
        if front:  # a retried job keeps its turn: ahead of everything in its priority class
            key = (-job.priority, 0, -seq)
        else:
            rnd = max(self.owner_round.get(job.owner, 0) + 1, self.serving_round)
            self.owner_round[job.owner] = rnd
            key = (-job.priority, rnd, seq)
        heapq.heappush(self.heap, _Entry(key, job))

    def pop(self) -> QueuedJob:
        entry = heapq.heappop(self.heap)
        rnd = entry.sort_key[1]
        self.serving_round = max(self.serving_round, rnd)
        if self.owner_round.get(entry.job.owner) == rnd:  # the owner's last queued job
            del self.owner_round[entry.job.owner]
        return entry.job


class JobQueues:
    """All models' queues. Jobs are identified by id; each job is in at most one queue."""

    def __init__(self) -> None:
        self._queues: dict[ModelId, _ModelQueue] = {}
        self._where: dict[JobId, ModelId] = {}
        self._seq = itertools.count(1)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def push(
        self,
        job_id: JobId,
        model_id: ModelId,
        priority: int = 0,
        front: bool = False,
        *,
        owner: OwnerId = "",
        now: float = 0.0,
    ) -> None:
        """Queue a job; `front` puts it ahead of its priority class (a retry keeps its turn).
        Pushing a job that is already queued does nothing."""
        if job_id in self._where:
            return
        job = QueuedJob(job_id, model_id, priority, owner, now)
        self._queues.setdefault(model_id, _ModelQueue()).push(job, next(self._seq), front)
        self._where[job_id] = model_id

    def remove(self, job_id: JobId) -> bool:
        """Take a job out of its queue (cancellation); False if it was not queued."""
        model_id = self._where.pop(job_id, None)
        if model_id is None:
            return False
        heap = self._queues[model_id].heap
        heap[:] = [e for e in heap if e.job.job_id != job_id]
        heapq.heapify(heap)
        return True

    def model_of(self, job_id: JobId) -> ModelId | None:
        return self._where.get(job_id)

    def head(self, model_id: ModelId) -> QueuedJob | None:
        """The job the model would run next, without removing it."""
        queue = self._queues.get(model_id)
        return queue.heap[0].job if queue and queue.heap else None

    def pop(self, model_id: ModelId) -> QueuedJob | None:
        """Remove and return the model's next job."""
        queue = self._queues.get(model_id)
        if not queue or not queue.heap:
            return None
        job = queue.pop()
        del self._where[job.job_id]
        return job

    def jobs(self, model_id: ModelId) -> list[QueuedJob]:
        """The model's queued jobs in the order they will run."""
        queue = self._queues.get(model_id)
        return [e.job for e in sorted(queue.heap)] if queue else []

    def models(self) -> list[ModelId]:
        """Models that have queued jobs."""
        return [m for m, q in self._queues.items() if q.heap]

    def by_urgency(self) -> list[ModelId]:
        """Models with queued jobs, most urgent first: their head job's priority, then
        how long it has waited. This orders models competing for GPUs and VRAM."""
        heads = [(q.heap[0].job, m) for m, q in self._queues.items() if q.heap]
        return [m for job, m in sorted(heads, key=lambda h: (-h[0].priority, h[0].enqueued_at))]

    def length(self, model_id: ModelId) -> int:
        queue = self._queues.get(model_id)
        return len(queue.heap) if queue else 0

    def position(self, job_id: JobId) -> int | None:
        """0-based place of the job in its model's queue."""
        model_id = self._where.get(job_id)
        if model_id is None:
            return None
        return next(i for i, j in enumerate(self.jobs(model_id)) if j.job_id == job_id)

    def lengths(self) -> dict[ModelId, int]:
        return {m: len(q.heap) for m, q in self._queues.items() if q.heap}

    def plan(self, free_slots: dict[ModelId, int]) -> list[Dispatch]:
        """Pop as many jobs per model as it has free slots; models without room are skipped.
        (The fixed-capacity path; `Scheduler.plan` supersedes it once VRAM is managed.)"""
        decisions: list[Dispatch] = []
        for model_id in self.models():
            for _ in range(max(0, free_slots.get(model_id, 0))):
                job = self.pop(model_id)
                if job is None:
                    break
                decisions.append(Dispatch(job.job_id, model_id))
        return decisions
