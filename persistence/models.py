"""SQLModel tables. Timestamps are timezone-aware UTC (sqlmodel's UTCDateTime columns)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from meshforge.lifecycle import JobStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def plausible_id(value: str) -> bool:
    """Whether `value` could be a row id at all. Ids come from clients (paths, bodies): one
    with a NUL or control character, or longer than any key column, names no row, and
    PostgreSQL would refuse it as a query parameter rather than find nothing."""
    return 0 < len(value) <= 64 and value.isprintable()


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


# ---- users and API tokens ----------------------------------------------------------------

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,63}$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable: no NUL or control characters


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class TokenKind(StrEnum):
    """`login` tokens come from POST /users/login and die with a password change; `api`
    tokens are created by name and live until they expire or are revoked."""

    LOGIN = "login"
    API = "api"


def new_user_id() -> str:
    return f"user_{secrets.token_hex(8)}"


def new_token_id() -> str:
    return f"tok_{secrets.token_hex(8)}"


class UserBase(SQLModel):
    username: str = Field(
        unique=True,
        index=True,
        min_length=3,
        max_length=64,
        schema_extra={"pattern": USERNAME_PATTERN},
    )
    email: str = Field(
        unique=True, index=True, max_length=254, schema_extra={"pattern": EMAIL_PATTERN}
    )

    @field_validator("username", "email", mode="before")
    @classmethod
    def _fold_case(cls, value: Any) -> Any:
        """Names and addresses are case-insensitive, so `Alice` cannot pose as `alice`."""
        return value.strip().lower() if isinstance(value, str) else value


class UserRegister(UserBase):
    """Body of POST /users/register; `role` other than `user` needs an admin's token."""

    password: str = Field(min_length=8, max_length=1024)
    role: Role = Field(default=Role.USER)


class User(UserBase, table=True):
    """An account. Only the argon2 hash of its password is stored."""

    __tablename__ = "users"

    id: str = Field(default_factory=new_user_id, primary_key=True, max_length=64)
    password_hash: str = Field(max_length=256)
    role: str = Field(default=Role.USER.value, max_length=16)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime = Field(default_factory=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


class UserPublic(SQLModel):
    user_id: str
    username: str
    email: str
    role: str

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(user_id=user.id, username=user.username, email=user.email, role=user.role)


class PasswordChange(SQLModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class ApiTokenBase(SQLModel):
    name: str = Field(max_length=128)
    kind: str = Field(default=TokenKind.API.value, max_length=16)
    expires_at: datetime


class ApiTokenCreate(SQLModel):
    """Body of POST /users/tokens."""

    token_name: str = Field(min_length=1, max_length=128, schema_extra={"pattern": NAME_PATTERN})
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class ApiToken(ApiTokenBase, table=True):
    """A bearer token. The secret is shown once; only its keyed hash is stored."""

    __tablename__ = "api_tokens"

    id: str = Field(default_factory=new_token_id, primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=64)
    token_hash: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked: bool = Field(default=False)
    revoked_at: datetime | None = None


class ApiTokenPublic(SQLModel):
    token_id: str
    token_name: str
    kind: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenPublic:
        return cls(
            token_id=token.id,
            token_name=token.name,
            kind=token.kind,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked=token.revoked,
        )
