"""Pytest plugin: a fresh PostgreSQL database per session on the server at 127.0.0.1:5432."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

PG_SERVER = os.environ.get("MESHFORGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database, dropped at the end of the session."""
    name = f"meshforge_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests ({PG_SERVER}): {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
