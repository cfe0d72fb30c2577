"""Password hashing, bearer tokens and the secure-default checks of the settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.accounts import bearer_token
from app.security import (
    hash_password,
    needs_rehash,
    new_token,
    token_digest,
    token_id_of,
    token_matches,
    verify_password,
)
from meshforge.settings import Settings

KEY = "k" * 48


def test_passwords_are_argon2id_salted_and_verified() -> None:
    first, second = hash_password("secret123"), hash_password("secret123")
    assert first.startswith("$argon2id$") and first != second  # a salt per hash
    assert "secret123" not in first
    assert verify_password(first, "secret123")
    assert not verify_password(first, "secret124")
    assert not verify_password("not-a-hash", "secret123")
    assert not verify_password(first, "")
    assert not needs_rehash(first)
    assert needs_rehash("not-a-hash")


def test_tokens_carry_their_id_and_256_random_bits() -> None:
    token = new_token("tok_0123456789abcdef")
    assert token_id_of(token) == "tok_0123456789abcdef"
    assert token != new_token("tok_0123456789abcdef")
    for bad in ("", "tok_0123456789abcdef", "tok_0123.abc", token + "x", " " + token):
        assert token_id_of(bad) is None


def test_token_digests_are_keyed_and_compared_whole() -> None:
    token = new_token("tok_0123456789abcdef")
    digest = token_digest(KEY, token)
    assert token not in digest and len(digest) == 64
    assert token_matches(KEY, token, digest)
    assert not token_matches("x" * 48, token, digest)  # the pepper matters
    assert not token_matches(KEY, token[:-1] + ("A" if token[-1] != "A" else "B"), digest)
    assert not token_matches(KEY, token, digest[:-1])


@pytest.mark.parametrize(
    "header,expected",
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize("secret", ["", "changethis", "CHANGEME", "secret", "short-but-random"])
def test_auth_refuses_default_or_short_secrets(secret: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(user_auth_enabled=True, secret_key=secret)
    if len(secret) > 10:
        assert secret not in str(info.value)  # the value is never echoed


def test_secrets_are_only_required_with_auth() -> None:
    assert Settings(user_auth_enabled=False).secret_key == ""
    assert Settings(user_auth_enabled=True, secret_key=KEY).user_auth_enabled
    assert KEY not in repr(Settings(user_auth_enabled=True, secret_key=KEY))


def test_the_application_refuses_to_start_with_a_default_secret() -> None:
    from app.serve_app import build_app

    with pytest.raises(ValidationError):
        build_app({"user_auth_enabled": True, "secret_key": "changethis"})


def test_cors_is_closed_by_default() -> None:
    assert Settings().cors_origins == []
    assert Settings().registration_open is False
