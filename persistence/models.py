"""SQLModel tables. Timestamps are timezone-aware UTC (sqlmodel's UTCDateTime columns)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from meshforge.lifecycle import JobStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return f"job_{secrets.token_hex(8)}"


def new_file_id() -> str:
    return f"file_{secrets.token_hex(8)}"


class JobBase(SQLModel):
    feature: str = Field(index=True, max_length=64)
    model_id: str = Field(max_length=128)
    model_preference: str | None = Field(default=None, max_length=128)
    output_format: str = Field(max_length=16)
    priority: int = Field(default=0)
    owner_id: str | None = Field(default=None, index=True, max_length=64)


class Job(JobBase, table=True):
    """One job row; only the job manager changes `status` after creation."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: str = Field(default_factory=new_job_id, primary_key=True, max_length=64)
    status: str = Field(default=JobStatus.QUEUED.value, max_length=16)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None)
    progress_stage: str | None = Field(default=None, max_length=128)
    progress_fraction: float = Field(default=0.0)
    attempt: int = Field(default=0, description="Dispatches so far; the current attempt number.")
    retries: int = Field(default=0, description="Dispatches repeated after a replica failure.")
    recoveries: int = Field(default=0, description="Re-dispatches after a job-manager restart.")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime | None = None
    cancel_requested: bool = Field(default=False)

    @property
    def processing_time(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at or utcnow()
        return round((end - self.started_at).total_seconds(), 3)


class StoredFile(SQLModel, table=True):
    """An uploaded file; deleted with its object when `expires_at` passes."""

    __tablename__ = "files"

    id: str = Field(default_factory=new_file_id, primary_key=True, max_length=64)
    filename: str = Field(max_length=255)
    file_type: str = Field(max_length=16)
    file_format: str = Field(max_length=16)
    content_type: str = Field(max_length=64)
    size_bytes: int
    storage_key: str = Field(max_length=512)
    info: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    owner_id: str | None = Field(default=None, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = Field(default=None, index=True)
