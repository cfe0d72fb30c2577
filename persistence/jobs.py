"""Job queries. `transition_job` is the one function that changes a job's status."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from meshforge.errors import Conflict, NotFound
from meshforge.lifecycle import JobStatus, check_transition
from persistence.db import session_scope
from persistence.models import Job, plausible_id, utcnow


class StaleAttempt(Conflict):
    """The job moved on (another attempt, or another writer) since the caller last saw it."""


def create_job(engine: Engine, *, job: Job) -> Job:
    with session_scope(engine) as session:
        session.add(job)
    return job


def get_job(engine: Engine, job_id: str) -> Job | None:
    if not plausible_id(job_id):
        return None
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Job, job_id)


def require_job(engine: Engine, job_id: str, owner_id: str | None = None) -> Job:
    """The job, or NotFound; with `owner_id`, another owner's job is NotFound too."""
    job = get_job(engine, job_id)
    if job is None or (owner_id is not None and job.owner_id != owner_id):
        raise NotFound(f"Job {job_id} not found", {"job_id": job_id})
    return job


def transition_job(
    engine: Engine,
    *,
    job_id: str,
    to: JobStatus,
    expect_attempt: int | None = None,
    **fields: Any,
) -> Job:
    """Move a job to `to` atomically (compare-and-set on status and, if given, the attempt).

    Raises IllegalTransition for a move the lifecycle forbids and StaleAttempt when the
    row changed underneath (so two writers can never both complete a job).
    """
    job = get_job(engine, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found", {"job_id": job_id})
    current = JobStatus(job.status)
    check_transition(current, to)
    if expect_attempt is not None and job.attempt != expect_attempt:
        raise StaleAttempt(f"Job {job_id} is at attempt {job.attempt}, not {expect_attempt}")
    now = utcnow()
    values: dict[str, Any] = {"status": to.value, "updated_at": now, **fields}
    if to is JobStatus.PROCESSING and job.started_at is None:
        values.setdefault("started_at", now)
    if to.is_final:
        values.setdefault("completed_at", now)
    stmt = update(Job).where(col(Job.id) == job_id, col(Job.status) == current.value)
    if expect_attempt is not None:
        stmt = stmt.where(col(Job.attempt) == expect_attempt)
    with session_scope(engine) as session:
        if session.execute(stmt.values(**values)).rowcount != 1:  # type: ignore[attr-defined]
            raise StaleAttempt(f"Job {job_id} changed while moving to {to.value}")
    for key, value in values.items():
        setattr(job, key, value)
    return job


def update_progress(
    engine: Engine, *, job_id: str, attempt: int, stage: str, fraction: float
) -> bool:
    """Record progress of the running attempt; False if that attempt is no longer current."""
    stmt = (
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.attempt) == attempt,
            col(Job.status) == JobStatus.PROCESSING.value,
        )
        .values(
            progress_stage=stage[:128],
            progress_fraction=fraction,
            heartbeat_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    with session_scope(engine) as session:
        return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def jobs_in(engine: Engine, statuses: Iterable[JobStatus]) -> list[Job]:
    values = [s.value for s in statuses]
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(Job).where(col(Job.status).in_(values)).order_by(col(Job.created_at))
        )
        return list(rows)


def count_by_status(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Job.status, func.count()).group_by(Job.status))
        counts = {s.value: 0 for s in JobStatus}
        counts.update({status: int(n) for status, n in rows})
        return counts


def list_jobs(
    engine: Engine,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    feature: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    owner_id: str | None = None,
) -> tuple[list[Job], int]:
    """A page of jobs, newest first, and the total that matches the filters."""
    conditions = []
    if status:
        conditions.append(col(Job.status) == status)
    if feature:
        conditions.append(col(Job.feature) == feature)
    if start_date:
        conditions.append(col(Job.created_at) >= start_date)
    if end_date:
        conditions.append(col(Job.created_at) <= end_date)
    if owner_id is not None:
        conditions.append(col(Job.owner_id) == owner_id)
    with Session(engine, expire_on_commit=False) as session:
        total = session.exec(select(func.count()).select_from(Job).where(*conditions)).one()
        rows = session.exec(
            select(Job)
            .where(*conditions)
            .order_by(col(Job.created_at).desc(), col(Job.id))
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)


def set_result(engine: Engine, *, job_id: str, result: dict[str, Any] | None) -> None:
    """Replace the result document (used when a result file is deleted)."""
    with session_scope(engine) as session:
        session.execute(
            update(Job).where(col(Job.id) == job_id).values(result=result, updated_at=utcnow())
        )


def count_active_jobs(engine: Engine, *, owner_id: str) -> int:
    """Queued plus processing jobs of one owner (the per-user concurrency cap counts these)."""
    active = [JobStatus.QUEUED.value, JobStatus.PROCESSING.value]
    with Session(engine) as session:
        stmt = (
            select(func.count())
            .select_from(Job)
            .where(col(Job.owner_id) == owner_id, col(Job.status).in_(active))
        )
        return int(session.exec(stmt).one())
