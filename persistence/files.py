"""Queries on uploaded files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from meshforge.errors import NotFound
from persistence.db import session_scope
from persistence.models import StoredFile, plausible_id


def create_file(engine: Engine, *, record: StoredFile) -> StoredFile:
    with session_scope(engine) as session:
        session.add(record)
    return record


def get_file(engine: Engine, file_id: str) -> StoredFile | None:
    if not plausible_id(file_id):
        return None
    with Session(engine, expire_on_commit=False) as session:
        return session.get(StoredFile, file_id)


def require_file(engine: Engine, file_id: str, owner_id: str | None = None) -> StoredFile:
    record = get_file(engine, file_id)
    if record is None or (owner_id is not None and record.owner_id != owner_id):
        raise NotFound(f"File {file_id} not found", {"file_id": file_id})
    return record


def expired_files(engine: Engine, *, now: datetime, limit: int = 500) -> list[StoredFile]:
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(StoredFile)
            .where(col(StoredFile.expires_at).is_not(None), col(StoredFile.expires_at) <= now)
            .limit(limit)
        )
        return list(rows)


def delete_file_row(engine: Engine, file_id: str) -> None:
    with session_scope(engine) as session:
        session.execute(delete(StoredFile).where(col(StoredFile.id) == file_id))
