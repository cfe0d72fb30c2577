"""Job and file persistence on both databases: SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from meshforge.lifecycle import IllegalTransition, JobStatus
from persistence import files as file_db
from persistence import jobs as job_db
from persistence.db import make_engine, migrate
from persistence.models import Job, StoredFile, utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    migrate(url)
    eng = make_engine(url)
    if request.param == "postgresql":  # one database per session: start each test empty
        with eng.begin() as conn:
            conn.exec_driver_sql("DELETE FROM jobs")
            conn.exec_driver_sql("DELETE FROM files")
    yield eng
    eng.dispose()


def make_job(**kw: object) -> Job:
    fields: dict[str, object] = {
        "feature": "retopology",
        "model_id": "quadric_retopology",
        "output_format": "obj",
        "params": {"target_vertex_count": 500},
    }
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def test_migrations_create_tables_and_are_idempotent(engine) -> None:  # type: ignore[no-untyped-def]
    migrate(engine.url.render_as_string(hide_password=False))
    tables = set(inspect(engine).get_table_names())
    assert {"jobs", "files", "alembic_version"} <= tables


def test_job_round_trip_keeps_json_and_timezones(engine) -> None:  # type: ignore[no-untyped-def]
    job = job_db.create_job(engine, job=make_job(inputs={"mesh": {"key": "jobs/x/in.obj"}}))
    loaded = job_db.require_job(engine, job.id)
    assert loaded.params == {"target_vertex_count": 500}
    assert loaded.inputs == {"mesh": {"key": "jobs/x/in.obj"}}
    assert loaded.status == "queued"
    assert loaded.created_at.tzinfo is not None


def test_transitions_follow_the_lifecycle(engine) -> None:  # type: ignore[no-untyped-def]
    job = job_db.create_job(engine, job=make_job())
    job = job_db.transition_job(
        engine, job_id=job.id, to=JobStatus.PROCESSING, expect_attempt=0, attempt=1
    )
    assert job.status == "processing" and job.started_at is not None and job.attempt == 1
    with pytest.raises(job_db.StaleAttempt):
        job_db.transition_job(engine, job_id=job.id, to=JobStatus.COMPLETED, expect_attempt=0)
    job = job_db.transition_job(
        engine, job_id=job.id, to=JobStatus.COMPLETED, expect_attempt=1, result={"files": []}
    )
    assert job.completed_at is not None and job.processing_time is not None
    with pytest.raises(IllegalTransition) as err:
        job_db.transition_job(engine, job_id=job.id, to=JobStatus.CANCELLED)
    assert err.value.code == "API_ERROR" and err.value.status_code == 409


def test_concurrent_completion_has_exactly_one_winner(engine) -> None:  # type: ignore[no-untyped-def]
    job = job_db.create_job(engine, job=make_job())
    job_db.transition_job(
        engine, job_id=job.id, to=JobStatus.PROCESSING, expect_attempt=0, attempt=1
    )
    wins: list[str] = []
    errors: list[Exception] = []

    def finish(status: JobStatus) -> None:
        try:
            job_db.transition_job(engine, job_id=job.id, to=status, expect_attempt=1)
            wins.append(status.value)
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=finish, args=(s,))
        for s in (JobStatus.COMPLETED, JobStatus.FAILED) * 4
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1, (wins, errors)
    assert job_db.require_job(engine, job.id).status == wins[0]


def test_history_filters_and_pagination(engine) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    for i in range(7):
        job_db.create_job(
            engine,
            job=make_job(
                feature="retopology" if i % 2 else "mesh_segmentation",
                created_at=now - timedelta(hours=i),
            ),
        )
    rows, total = job_db.list_jobs(engine, limit=3, offset=0)
    assert total == 7 and len(rows) == 3
    assert rows[0].created_at >= rows[1].created_at >= rows[2].created_at
    rows, total = job_db.list_jobs(engine, limit=10, offset=0, feature="retopology")
    assert total == 3 and all(r.feature == "retopology" for r in rows)
    rows, total = job_db.list_jobs(
        engine, limit=10, offset=0, start_date=now - timedelta(hours=2, minutes=30)
    )
    assert total == 3
    rows, total = job_db.list_jobs(engine, limit=10, offset=5)
    assert total == 7 and len(rows) == 2
    assert job_db.count_by_status(engine)["queued"] == 7


def test_expired_files_are_listed(engine) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    old = file_db.create_file(
        engine,
        record=StoredFile(
            filename="a.obj",
            file_type="mesh",
            file_format="obj",
            content_type="x",
            size_bytes=1,
            storage_key="uploads/a/a.obj",
            expires_at=now - timedelta(seconds=1),
        ),
    )
    file_db.create_file(
        engine,
        record=StoredFile(
            filename="b.obj",
            file_type="mesh",
            file_format="obj",
            content_type="x",
            size_bytes=1,
            storage_key="uploads/b/b.obj",
            expires_at=now + timedelta(hours=1),
        ),
    )
    assert [f.id for f in file_db.expired_files(engine, now=now)] == [old.id]
    file_db.delete_file_row(engine, old.id)
    assert file_db.get_file(engine, old.id) is None
