"""Pytest plugin: fresh PostgreSQL databases per session on the server at 127.0.0.1:5432."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_SERVER = os.environ.get("MESHFORGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def new_database() -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database, dropped when the block ends."""
    name = f"meshforge_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests ({PG_SERVER}): {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The session's database (the auth-off application and the persistence tests)."""
    with new_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_auth_url() -> Iterator[str]:
    """A second database, for the auth-on application."""
    with new_database() as url:
        yield url
