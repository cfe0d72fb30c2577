"""Accounts and tokens through HTTP on the auth-on application (`auth_service`)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import text, update

from persistence.db import make_engine
from persistence.models import ApiToken, utcnow
from tests.integration.conftest import ADMIN, AuthService, Service, client_address
from tests.integration.test_api import assert_error


def _sql(svc: AuthService, statement: Any, **params: Any) -> list[Any]:
    """Run one statement on the auth app's database (to look at or age rows)."""
    engine = make_engine(svc.settings.resolved_database_url())
    try:
        with engine.begin() as conn:
            result = conn.execute(statement, params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def test_the_first_admin_comes_from_the_cli_and_logs_in(auth_service: AuthService) -> None:
    login = auth_service.login(ADMIN["username"], ADMIN["password"])
    body = login.json()
    assert body["user"]["role"] == "admin" and body["user"]["username"] == "root"
    assert body["token_name"] == "Login token - root"
    assert body["message"].startswith("Login successful")
    me = auth_service.as_token(body["token"]).get("/api/v1/users/me").json()
    assert me == {"success": True, "user": body["user"]}
    assert login.headers["cache-control"] == "no-store"


def test_closed_registration_needs_an_admin(auth_service: AuthService) -> None:
    creds = {"username": "walkin", "email": "walkin@example.com", "password": "walkin-pass-1"}
    assert_error(auth_service.post("/api/v1/users/register", json=creds), 401, "UNAUTHORIZED")
    user, _ = auth_service.new_user()
    assert_error(user.post("/api/v1/users/register", json=creds), 403, "FORBIDDEN")
    escalate = {**creds, "role": "admin"}
    assert_error(user.post("/api/v1/users/register", json=escalate), 403, "FORBIDDEN")
    assert auth_service.admin is not None
    made = auth_service.admin.post("/api/v1/users/register", json=creds)
    assert made.status_code == 200, made.text
    assert made.json()["success"] is True
    assert made.json()["user"] == {
        "user_id": made.json()["user"]["user_id"],
        "username": "walkin",
        "email": "walkin@example.com",
        "role": "user",
    }
    again = {**creds, "username": "WalkIn"}  # names are case-insensitive
    assert_error(auth_service.admin.post("/api/v1/users/register", json=again), 409, "API_ERROR")


def test_bad_credentials_are_one_answer(auth_service: AuthService) -> None:
    _, user = auth_service.new_user()
    wrong = auth_service.login(user["username"], "not-the-password")
    unknown = auth_service.login(f"nobody{secrets.token_hex(3)}", "not-the-password")
    for resp in (wrong, unknown):
        body = assert_error(resp, 401, "UNAUTHORIZED")
        assert body["message"] == "Invalid username or password"


def test_missing_invalid_and_forged_tokens_are_refused(auth_service: AuthService) -> None:
    """The seed accepted any bearer string; here only a token whose secret matches passes."""
    _, user = auth_service.new_user()
    token_id, secret = user["token"].split(".")
    forged = f"{token_id}.{secret[::-1]}"
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer anything-at-all"},
        {"Authorization": f"Basic {user['token']}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer tok_0000000000000000.{secret}"},
    ):
        resp = auth_service.get("/api/v1/users/me", headers=headers)
        assert_error(resp, 401, "UNAUTHORIZED")
        assert resp.headers["www-authenticate"] == "Bearer"
    ok = auth_service.get("/api/v1/users/me", headers={"Authorization": f"bearer {user['token']}"})
    assert ok.status_code == 200


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(
    auth_service: AuthService,
) -> None:
    """The seed stored tokens (and SHA-256 passwords) in clear; here the database holds an
    argon2id hash of the password and only a keyed hash of each token."""
    user, info = auth_service.new_user()
    made = user.post("/api/v1/users/tokens", json={"token_name": "ci", "expires_in_days": 30})
    assert made.status_code == 200, made.text
    token, token_id = made.json()["token"], made.json()["token_id"]
    assert made.json()["token_name"] == "ci"
    listed = user.get("/api/v1/users/tokens").json()
    names = {t["token_id"]: t for t in listed["tokens"]}
    assert names[token_id]["token_name"] == "ci" and names[token_id]["kind"] == "api"
    assert token not in str(listed) and "token_hash" not in str(listed)
    ((stored,),) = _sql(
        auth_service, text("SELECT token_hash FROM api_tokens WHERE id = :i"), i=token_id
    )
    ((pw_hash,),) = _sql(
        auth_service, text("SELECT password_hash FROM users WHERE id = :i"), i=info["user_id"]
    )
    assert stored != token and token.split(".")[1] not in stored and len(stored) == 64
    assert pw_hash.startswith("$argon2id$") and info["password"] not in pw_hash

    api = auth_service.as_token(token)
    assert api.get("/api/v1/users/me").status_code == 200
    other, _ = auth_service.new_user()
    assert_error(other.delete(f"/api/v1/users/tokens/{token_id}"), 404, "NOT_FOUND")
    assert api.get("/api/v1/users/me").status_code == 200
    revoked = user.delete(f"/api/v1/users/tokens/{token_id}")
    assert revoked.json()["revoked"] is True
    assert_error(api.get("/api/v1/users/me"), 401, "UNAUTHORIZED")
    assert_error(api.get("/api/v1/system/jobs/history"), 401, "UNAUTHORIZED")
    listed = user.get("/api/v1/users/tokens").json()["tokens"]
    assert next(t for t in listed if t["token_id"] == token_id)["revoked"] is True


def test_expired_tokens_are_refused(auth_service: AuthService) -> None:
    user, _ = auth_service.new_user()
    made = user.post("/api/v1/users/tokens", json={"token_name": "short", "expires_in_days": 1})
    token_id = made.json()["token_id"]
    api = auth_service.as_token(made.json()["token"])
    assert api.get("/api/v1/users/me").status_code == 200
    past = utcnow() - timedelta(seconds=1)
    stmt = update(ApiToken).where(ApiToken.id == token_id)  # type: ignore[arg-type]
    _sql(auth_service, stmt.values(expires_at=past))
    body = assert_error(api.get("/api/v1/users/me"), 401, "UNAUTHORIZED")
    assert "expired" in body["message"]
    for bad in (0, 3651, "x"):
        resp = user.post("/api/v1/users/tokens", json={"token_name": "t", "expires_in_days": bad})
        assert_error(resp, 422, "INVALID_VALUE")


def test_password_change_revokes_login_tokens(auth_service: AuthService) -> None:
    user, info = auth_service.new_user()
    second = auth_service.login(info["username"], info["password"]).json()["token"]
    api_token = user.post("/api/v1/users/tokens", json={"token_name": "kept"}).json()["token"]
    url = "/api/v1/users/me/password"
    wrong = {"old_password": "not-it", "new_password": "brand-new-pass-1"}
    assert_error(user.put(url, json=wrong), 403, "FORBIDDEN")
    same = {"old_password": info["password"], "new_password": info["password"]}
    assert_error(user.put(url, json=same), 422, "INVALID_VALUE")
    short = {"old_password": info["password"], "new_password": "short"}
    assert_error(user.put(url, json=short), 422, "INVALID_VALUE")
    good = {"old_password": info["password"], "new_password": "brand-new-pass-1"}
    changed = user.put(url, json=good)
    assert changed.status_code == 200, changed.text
    assert changed.json()["revoked_tokens"] == 2
    for token in (info["token"], second):
        assert_error(auth_service.as_token(token).get("/api/v1/users/me"), 401, "UNAUTHORIZED")
    assert auth_service.as_token(api_token).get("/api/v1/users/me").status_code == 200
    assert_error(auth_service.login(info["username"], info["password"]), 401, "UNAUTHORIZED")
    assert auth_service.login(info["username"], "brand-new-pass-1").status_code == 200


def test_login_is_throttled_per_account_and_per_address(auth_service: AuthService) -> None:
    _, info = auth_service.new_user()
    per_account = int(auth_service.settings.login_attempts_per_minute)
    for _ in range(per_account - 1):  # new_user's login took one attempt
        assert_error(auth_service.login(info["username"], "guess"), 401, "UNAUTHORIZED")
    resp = auth_service.login(info["username"], info["password"])  # right, but too late
    body = assert_error(resp, 429, "RATE_LIMITED")
    assert int(resp.headers["retry-after"]) >= 1 and body["detail"]["retry_after_s"] >= 1

    address = client_address()
    per_address = int(auth_service.settings.login_attempts_per_minute_per_address)
    for i in range(per_address):
        resp = auth_service.post(
            "/api/v1/users/login",
            json={"username": f"spray{i}{secrets.token_hex(2)}", "password": "guess"},
            headers=address,
        )
        assert_error(resp, 401, "UNAUTHORIZED")
    resp = auth_service.post(
        "/api/v1/users/login", json={"username": "spray-last", "password": "x"}, headers=address
    )
    assert_error(resp, 429, "RATE_LIMITED")
    assert "address" in resp.json()["message"]


def test_user_routes_are_absent_when_auth_is_off(service: Service) -> None:
    for method, path in (
        ("POST", "/api/v1/users/login"),
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/users/tokens"),
    ):
        resp = service._request(method, path, json={"username": "a", "password": "b"})
        assert_error(resp, 404, "NOT_FOUND")
