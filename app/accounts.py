"""Accounts: who is calling (bearer tokens), registration, login, passwords, tokens.

Blocking functions (database, argon2); the routers run them in the thread pool. Every
credential failure is the same 401 `UNAUTHORIZED`, so a client cannot tell an unknown
token id from a wrong secret, or an unknown username from a wrong password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.context import AppContext
from app.security import (
    burn_password_check,
    hash_password,
    needs_rehash,
    new_token,
    token_digest,
    token_id_of,
    token_matches,
    verify_password,
)
from meshforge.errors import Conflict, Forbidden, InvalidValue, RateLimited, Unauthorized
from persistence import users as user_db
from persistence.models import (
    ApiToken,
    PasswordChange,
    Role,
    TokenKind,
    User,
    UserRegister,
    new_token_id,
    utcnow,
)

MAX_LIVE_API_TOKENS = 100  # per user; keeps one account from filling the table
TOUCH_EVERY = timedelta(seconds=60)  # `last_used_at` precision; avoids a write per request
BAD_CREDENTIALS = "Invalid username or password"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: str
    username: str
    role: str
    token_id: str
    token_kind: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def authenticate(ctx: AppContext, authorization: str | None) -> Principal:
    """The principal behind a bearer token, or Unauthorized."""
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("Authentication required: send `Authorization: Bearer <token>`")
    token_id = token_id_of(token)
    found = user_db.token_with_user(ctx.engine, token_id) if token_id else None
    if found is None or not token_matches(ctx.settings.secret_key, token, found[0].token_hash):
        raise Unauthorized("Invalid token")
    row, user = found
    now = utcnow()
    if row.revoked:
        raise Unauthorized("Token has been revoked")
    if row.expires_at <= now:
        raise Unauthorized("Token has expired")
    if not user.is_active:
        raise Unauthorized("Account is disabled")
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        user_db.touch_token(ctx.engine, token_id=row.id, now=now)
    return Principal(user.id, user.username, user.role, row.id, row.kind)


def issue_token(
    ctx: AppContext, user_id: str, name: str, kind: TokenKind, ttl: timedelta
) -> tuple[str, ApiToken]:
    """Create a token; the clear text is returned here once and stored nowhere."""
    if kind is TokenKind.API:
        live = user_db.count_live_tokens(ctx.engine, user_id=user_id, kind=kind, now=utcnow())
        if live >= MAX_LIVE_API_TOKENS:
            raise Conflict(
                f"{live} API tokens are live; revoke some before creating more",
                {"max_live_tokens": MAX_LIVE_API_TOKENS},
            )
    token_id = new_token_id()
    token = new_token(token_id)
    row = ApiToken(
        id=token_id,
        user_id=user_id,
        name=name,
        kind=kind.value,
        token_hash=token_digest(ctx.settings.secret_key, token),
        expires_at=utcnow() + ttl,
    )
    return token, user_db.create_token(ctx.engine, token=row)


def check_registration(ctx: AppContext, caller: Principal | None) -> None:
    """Closed registration (the default) needs an admin's token: 401 without one, 403 for
    other users."""
    if ctx.settings.registration_open or (caller is not None and caller.is_admin):
        return
    if caller is None:
        raise Unauthorized("Registration is closed: an admin's token is required")
    raise Forbidden("Registration is closed: only admins can create users")


def register(ctx: AppContext, body: UserRegister, caller: Principal | None) -> User:
    """Create an account. Closed registration needs an admin; only admins grant `admin`."""
    check_registration(ctx, caller)
    is_admin = caller is not None and caller.is_admin
    if body.role != Role.USER and not is_admin:
        raise Forbidden("Only admins can create admin accounts")
    user = User(
        username=body.username,
        email=body.email,
        password_hash=hash_password(body.password),
        role=body.role.value,
    )
    return user_db.create_user(ctx.engine, user=user)


def throttle_login(ctx: AppContext, username: str, address: str) -> None:
    """Per client address first (guessing many accounts), then per account (guessing one
    account's password from many addresses)."""
    for limiter, key, what in (
        (ctx.limits.login_address, address, "from this address"),
        (ctx.limits.login_account, username.strip().lower(), "for this account"),
    ):
        wait = limiter.take(key)
        if wait > 0:
            raise RateLimited(f"Too many login attempts {what}; retry later", wait)


def login(ctx: AppContext, username: str, password: str) -> tuple[User, str, ApiToken]:
    """Check the password and issue a login token (named as in the spec)."""
    user = user_db.get_user_by_username(ctx.engine, username.strip().lower())
    if user is None:
        burn_password_check(password)
        raise Unauthorized(BAD_CREDENTIALS)
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise Unauthorized(BAD_CREDENTIALS)
    if needs_rehash(user.password_hash):
        user_db.rehash_password(ctx.engine, user_id=user.id, password_hash=hash_password(password))
    ttl = timedelta(hours=ctx.settings.login_token_expire_hours)
    token, row = issue_token(ctx, user.id, f"Login token - {user.username}", TokenKind.LOGIN, ttl)
    return user, token, row


def change_password(ctx: AppContext, principal: Principal, body: PasswordChange) -> int:
    """Set a new password after checking the old one; revokes the user's login tokens.
    Returns how many tokens were revoked."""
    wait = ctx.limits.login_account.take(principal.username)
    if wait > 0:
        raise RateLimited("Too many password attempts for this account; retry later", wait)
    user = user_db.get_user(ctx.engine, principal.user_id)
    if user is None:
        raise Unauthorized("Invalid token")
    if not verify_password(user.password_hash, body.old_password):
        raise Forbidden("The old password is not correct")
    if body.new_password == body.old_password:
        raise InvalidValue(
            "The new password must differ from the old one", {"field": "new_password"}
        )
    return user_db.set_password(
        ctx.engine, user_id=user.id, password_hash=hash_password(body.new_password)
    )
