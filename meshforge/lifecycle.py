"""The job lifecycle: one enum shared by the database, the API and the job manager."""

from __future__ import annotations

from enum import StrEnum

from meshforge.errors import Conflict


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# queued -> processing also covers a retry: a processing job whose replica died goes back
# to queued (processing -> queued) and is dispatched again.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class IllegalTransition(Conflict):
    """A transition the lifecycle forbids, such as cancelling a completed job."""


def check_transition(current: JobStatus, new: JobStatus) -> None:
    """Raise IllegalTransition unless `current -> new` is allowed."""
    if new not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransition(
            f"Job cannot go from {current.value} to {new.value}",
            {"current_status": current.value, "requested_status": new.value},
        )
