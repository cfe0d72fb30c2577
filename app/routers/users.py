"""User management routes of the spec: register, login, profile, password, API tokens.

They exist only when user_auth_enabled is true (404 otherwise). Login is open (it is how a
token is obtained) but throttled; registration is open only with `registration_open`,
otherwise it takes an admin's token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app import accounts
from app.deps import Bearer, Ctx, CurrentUser, accounts_enabled
from meshforge.errors import NotFound, RateLimited
from persistence import users as user_db
from persistence.models import (
    ApiTokenCreate,
    ApiTokenPublic,
    PasswordChange,
    TokenKind,
    UserPublic,
    UserRegister,
)

router = APIRouter(prefix="/api/v1/users", tags=["Users"], dependencies=[Depends(accounts_enabled)])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _client_address(request: Request) -> str:
    """The TCP peer as the Serve proxy saw it (uvicorn applies X-Forwarded-For only from
    the addresses in FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


async def registrar(ctx: Ctx, request: Request, _: Bearer) -> accounts.Principal | None:
    """The caller of a registration (a token is optional when registration is open),
    checked before the body so closed registration answers 401/403, never 422."""
    header = request.headers.get("authorization")
    caller = None
    if accounts.bearer_token(header) is not None:
        caller = await run_in_threadpool(accounts.authenticate, ctx, header)
    accounts.check_registration(ctx, caller)
    if caller is None:  # open registration: anonymous sign-ups share the login throttle
        wait = ctx.limits.login_address.take(_client_address(request))
        if wait > 0:
            raise RateLimited("Too many attempts from this address; retry later", wait)
    return caller


@router.post("/register")
async def register(
    ctx: Ctx, body: UserRegister, caller: Annotated[accounts.Principal | None, Depends(registrar)]
) -> dict[str, Any]:
    """Register a new user account."""
    user = await run_in_threadpool(accounts.register, ctx, body, caller)
    return {
        "success": True,
        "message": "User registered successfully. Please login to get an API token.",
        "user": UserPublic.of(user),
    }


@router.post("/login")
async def login(ctx: Ctx, request: Request, body: LoginRequest) -> dict[str, Any]:
    """Log in and receive an API token."""
    accounts.throttle_login(ctx, body.username, _client_address(request))
    user, token, row = await run_in_threadpool(accounts.login, ctx, body.username, body.password)
    return {
        "user": UserPublic.of(user),
        "token": token,
        "token_id": row.id,
        "token_name": row.name,
        "expires_at": row.expires_at,
        "message": "Login successful. Use this token in Authorization header.",
    }


@router.get("/me")
async def me(ctx: Ctx, caller: CurrentUser) -> dict[str, Any]:
    """Profile of the authenticated user."""
    user = await run_in_threadpool(user_db.get_user, ctx.engine, caller.user_id)
    if user is None:  # deleted while the token was in flight
        raise NotFound("User not found")
    return {"success": True, "user": UserPublic.of(user)}


@router.put("/me/password")
async def change_password(ctx: Ctx, caller: CurrentUser, body: PasswordChange) -> dict[str, Any]:
    """Change the password; every login token of the user is revoked."""
    revoked = await run_in_threadpool(accounts.change_password, ctx, caller, body)
    return {
        "success": True,
        "message": "Password changed. Login tokens were revoked; log in again.",
        "revoked_tokens": revoked,
    }


@router.get("/tokens")
async def list_tokens(ctx: Ctx, caller: CurrentUser) -> dict[str, Any]:
    """List the user's API tokens (never their secrets)."""
    rows = await run_in_threadpool(lambda: user_db.list_tokens(ctx.engine, user_id=caller.user_id))
    return {"tokens": [ApiTokenPublic.of(r) for r in rows], "total": len(rows)}


@router.post("/tokens")
async def create_token(ctx: Ctx, caller: CurrentUser, body: ApiTokenCreate) -> dict[str, Any]:
    """Create a new API token; its value is shown only in this response."""
    token, row = await run_in_threadpool(
        accounts.issue_token,
        ctx,
        caller.user_id,
        body.token_name,
        TokenKind.API,
        timedelta(days=body.expires_in_days),
    )
    return {
        "success": True,
        "token": token,
        "token_id": row.id,
        "token_name": row.name,
        "expires_at": row.expires_at,
        "message": "Store this token now: it is not shown again.",
    }


@router.delete("/tokens/{token_id}")
async def revoke_token(ctx: Ctx, caller: CurrentUser, token_id: str) -> dict[str, Any]:
    """Revoke one of the user's tokens (admins: anyone's)."""
    owner = None if caller.is_admin else caller.user_id
    found = await run_in_threadpool(
        lambda: user_db.revoke_token(ctx.engine, token_id=token_id, user_id=owner)
    )
    if not found:
        raise NotFound(f"Token {token_id} not found", {"token_id": token_id})
    return {"success": True, "token_id": token_id, "revoked": True, "message": "Token revoked"}
