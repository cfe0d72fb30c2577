"""Password and token primitives: argon2id for passwords, keyed hashes for bearer tokens.

Passwords are slow-hashed (argon2-cffi's RFC 9106 profile) because they are low-entropy.
Tokens are 256-bit random secrets, so one HMAC-SHA256 round keyed with `secret_key` (a
pepper kept out of the database) is enough: a copy of the database alone neither reveals
nor verifies a token. A token carries its row id (`tok_<hex>.<secret>`), so the row is
found by id and the secret compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_TOKEN = re.compile(r"^(tok_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


def hash_password(password: str) -> str:
    """An argon2id hash with its own random salt and parameters (`$argon2id$...`)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; a malformed stored hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Spend the time of one verification, so an unknown username answers as slowly as a
    wrong password and usernames cannot be probed by timing."""
    verify_password(_dummy_hash(), password)


def new_token(token_id: str) -> str:
    """The bearer token shown once to its owner: the row id and 256 random bits."""
    return f"{token_id}.{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str | None:
    """The row id inside a well-formed token; None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def token_digest(secret_key: str, token: str) -> str:
    """What the database stores for a token: HMAC-SHA256 keyed with the pepper."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def token_matches(secret_key: str, token: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented token with a stored digest."""
    return hmac.compare_digest(token_digest(secret_key, token), stored_digest)
