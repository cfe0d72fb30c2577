"""Queries on users and their API tokens (keyword-only, like persistence.jobs)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from meshforge.errors import Conflict
from persistence.db import session_scope
from persistence.models import (
    USERNAME_PATTERN,
    ApiToken,
    Role,
    TokenKind,
    User,
    plausible_id,
    utcnow,
)


def create_user(engine: Engine, *, user: User) -> User:
    """Insert a user; a taken username or email is a Conflict (the unique indexes decide,
    so two concurrent registrations of one name cannot both succeed)."""
    with Session(engine) as session:
        taken = session.exec(
            select(User.username).where(
                or_(col(User.username) == user.username, col(User.email) == user.email)
            )
        ).first()
    if taken is not None:
        raise Conflict("Username or email is already registered", {"field": "username/email"})
    try:
        with session_scope(engine) as session:
            session.add(user)
    except IntegrityError:
        raise Conflict(
            "Username or email is already registered", {"field": "username/email"}
        ) from None
    return user


def get_user(engine: Engine, user_id: str) -> User | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(User, user_id)


def get_user_by_username(engine: Engine, username: str) -> User | None:
    if not re.match(USERNAME_PATTERN, username):
        return None  # cannot exist (registration enforces the pattern); never a bad query
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(User).where(col(User.username) == username)).first()


def count_admins(engine: Engine) -> int:
    with Session(engine) as session:
        stmt = select(func.count()).select_from(User).where(col(User.role) == Role.ADMIN.value)
        return int(session.exec(stmt).one())


def set_password(
    engine: Engine,
    *,
    user_id: str,
    password_hash: str,
    revoke: Iterable[TokenKind] = (TokenKind.LOGIN,),
) -> int:
    """Store a new password hash and, in the same transaction, revoke the user's live tokens
    of the given kinds (login tokens by default). Returns how many were revoked."""
    now = utcnow()
    kinds = [k.value for k in revoke]
    with session_scope(engine) as session:
        session.execute(
            update(User)
            .where(col(User.id) == user_id)
            .values(password_hash=password_hash, password_changed_at=now)
        )
        if not kinds:
            return 0
        result = session.execute(
            update(ApiToken)
            .where(
                col(ApiToken.user_id) == user_id,
                col(ApiToken.kind).in_(kinds),
                col(ApiToken.revoked).is_(False),
            )
            .values(revoked=True, revoked_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def rehash_password(engine: Engine, *, user_id: str, password_hash: str) -> None:
    """Replace a hash made with old parameters (same password: nothing is revoked)."""
    with session_scope(engine) as session:
        session.execute(
            update(User).where(col(User.id) == user_id).values(password_hash=password_hash)
        )


def create_token(engine: Engine, *, token: ApiToken) -> ApiToken:
    with session_scope(engine) as session:
        session.add(token)
    return token


def token_with_user(engine: Engine, token_id: str) -> tuple[ApiToken, User] | None:
    """A token row and its user in one query (the hot path of every authenticated call)."""
    if not plausible_id(token_id):
        return None
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(
            select(ApiToken, User)
            .join(User, col(User.id) == col(ApiToken.user_id))
            .where(col(ApiToken.id) == token_id)
        ).first()
        return (row[0], row[1]) if row else None


def count_live_tokens(engine: Engine, *, user_id: str, kind: TokenKind, now: datetime) -> int:
    """Tokens of one kind that could still authenticate (not revoked, not expired)."""
    stmt = (
        select(func.count())
        .select_from(ApiToken)
        .where(
            col(ApiToken.user_id) == user_id,
            col(ApiToken.kind) == kind.value,
            col(ApiToken.revoked).is_(False),
            col(ApiToken.expires_at) > now,
        )
    )
    with Session(engine) as session:
        return int(session.exec(stmt).one())


def list_tokens(engine: Engine, *, user_id: str) -> list[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones until they are purged)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(ApiToken)
            .where(col(ApiToken.user_id) == user_id)
            .order_by(col(ApiToken.created_at).desc(), col(ApiToken.id))
        )
        return list(rows)


def revoke_token(engine: Engine, *, token_id: str, user_id: str | None) -> bool:
    """Revoke one token; with `user_id`, only if it is that user's. False when no such
    token (or another user's), so callers answer 404 either way."""
    if not plausible_id(token_id):
        return False
    stmt = update(ApiToken).where(col(ApiToken.id) == token_id)
    if user_id is not None:
        stmt = stmt.where(col(ApiToken.user_id) == user_id)
    with session_scope(engine) as session:
        found = session.execute(
            stmt.values(revoked=True, revoked_at=func.coalesce(col(ApiToken.revoked_at), utcnow()))
        )
        return bool(found.rowcount)  # type: ignore[attr-defined]


def touch_token(engine: Engine, *, token_id: str, now: datetime) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=now)
        )


def purge_tokens(engine: Engine, *, before: datetime) -> int:
    """Delete tokens that expired or were revoked before `before` (they can never be used
    again; keeping them a while lets their owners see why a token stopped working)."""
    stmt = delete(ApiToken).where(
        or_(
            col(ApiToken.expires_at) < before,
            col(ApiToken.revoked_at) < before,
        )
    )
    with session_scope(engine) as session:
        return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
