"""Users and API tokens on both databases, and migration 0002 up and down.

Each test gets a database of its own (a fresh PostgreSQL database or a SQLite file), so
downgrades never touch the database of the running applications.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from meshforge.errors import Conflict
from persistence import users as user_db
from persistence.db import alembic_config, make_engine, migrate
from persistence.models import ApiToken, TokenKind, User, utcnow
from tests.fixtures_pg import new_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'users.db'}"
    else:
        with new_database() as pg:
            yield pg


@pytest.fixture()
def engine(url: str) -> Iterator[Engine]:
    migrate(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _user(name: str, role: str = "user") -> User:
    return User(username=name, email=f"{name}@example.com", password_hash="$argon2id$x", role=role)


def _token(user_id: str, kind: TokenKind, days: float = 1.0) -> ApiToken:
    return ApiToken(
        user_id=user_id,
        name=kind.value,
        kind=kind.value,
        token_hash="0" * 64,
        expires_at=utcnow() + timedelta(days=days),
    )


def test_migration_0002_goes_up_and_down(url: str) -> None:
    migrate(url)
    eng = make_engine(url)
    try:
        tables = set(inspect(eng).get_table_names())
        assert {"users", "api_tokens", "jobs", "files"} <= tables
        indexes = {i["name"]: i["unique"] for i in inspect(eng).get_indexes("users")}
        assert indexes["ix_users_username"] and indexes["ix_users_email"]
        with eng.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        tables = set(inspect(eng).get_table_names())
        assert "users" not in tables and "api_tokens" not in tables
        assert {"jobs", "files"} <= tables
        migrate(url)
        assert {"users", "api_tokens"} <= set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_usernames_and_emails_are_unique(engine: Engine) -> None:
    user_db.create_user(engine, user=_user("alice", role="admin"))
    with pytest.raises(Conflict):
        user_db.create_user(engine, user=_user("alice"))
    twin = User(username="alice2", email="alice@example.com", password_hash="x")
    with pytest.raises(Conflict):
        user_db.create_user(engine, user=twin)
    assert user_db.count_admins(engine) == 1
    found = user_db.get_user_by_username(engine, "alice")
    assert found is not None and found.created_at.tzinfo is not None


def test_password_change_revokes_login_tokens_only(engine: Engine) -> None:
    user = user_db.create_user(engine, user=_user("bob"))
    login = user_db.create_token(engine, token=_token(user.id, TokenKind.LOGIN))
    api = user_db.create_token(engine, token=_token(user.id, TokenKind.API))
    other = user_db.create_token(
        engine, token=_token(user_db.create_user(engine, user=_user("eve")).id, TokenKind.LOGIN)
    )
    assert user_db.set_password(engine, user_id=user.id, password_hash="$argon2id$new") == 1
    state = {t.id: t.revoked for t in user_db.list_tokens(engine, user_id=user.id)}
    assert state == {login.id: True, api.id: False}
    found = user_db.token_with_user(engine, other.id)
    assert found is not None and found[0].revoked is False
    reloaded = user_db.get_user(engine, user.id)
    assert reloaded is not None and reloaded.password_hash == "$argon2id$new"


def test_revoking_is_scoped_and_dead_tokens_are_purged(engine: Engine) -> None:
    alice = user_db.create_user(engine, user=_user("alice"))
    bob = user_db.create_user(engine, user=_user("bob"))
    token = user_db.create_token(engine, token=_token(alice.id, TokenKind.API))
    assert not user_db.revoke_token(engine, token_id=token.id, user_id=bob.id)
    assert user_db.revoke_token(engine, token_id=token.id, user_id=alice.id)
    assert user_db.revoke_token(engine, token_id=token.id, user_id=None)  # admins
    assert not user_db.revoke_token(engine, token_id="tok_\x00", user_id=None)
    assert user_db.token_with_user(engine, "tok_\x00bad") is None
    assert user_db.get_user_by_username(engine, "ali\x00ce") is None
    expired = user_db.create_token(engine, token=_token(alice.id, TokenKind.API, days=-10))
    live = user_db.create_token(engine, token=_token(alice.id, TokenKind.API))
    assert (
        user_db.count_live_tokens(engine, user_id=alice.id, kind=TokenKind.API, now=utcnow()) == 1
    )
    assert user_db.purge_tokens(engine, before=utcnow() - timedelta(days=1)) == 1
    left = {t.id for t in user_db.list_tokens(engine, user_id=alice.id)}
    assert left == {token.id, live.id} and expired.id not in left
