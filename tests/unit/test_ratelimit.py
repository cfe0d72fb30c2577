"""Token buckets of the per-user and per-address limits, on a fake clock."""

from __future__ import annotations

from app.ratelimit import KeyedLimiter, Limits, TokenBucket
from meshforge.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(capacity=3, rate=0.5, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 2.0  # one token takes 2 s at 0.5/s
    assert bucket.take(1.0) == 1.0
    assert bucket.take(2.0) == 0.0
    assert bucket.take(100.0) == 0.0 and bucket.tokens == 2.0  # never above capacity


def test_keys_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = KeyedLimiter(capacity=2, per_minute=6, clock=clock)
    assert limiter.take("alice") == 0.0 and limiter.take("alice") == 0.0
    assert limiter.take("alice") == 10.0  # 6 per minute: one every 10 s
    assert limiter.take("bob") == 0.0
    clock.now += 10.0
    assert limiter.take("alice") == 0.0


def test_forgotten_keys_are_bounded() -> None:
    clock = Clock()
    limiter = KeyedLimiter(capacity=1, per_minute=1, clock=clock, max_keys=3)
    for key in "abcd":
        limiter.take(key)
    assert len(limiter._buckets) == 3 and "a" not in limiter._buckets
    assert limiter.take("a") == 0.0  # a forgotten key starts with a full bucket


def test_limits_follow_the_settings() -> None:
    limits = Limits.from_settings(
        Settings(
            job_submission_burst=4,
            job_submissions_per_minute=12,
            login_attempts_per_minute=3,
            login_attempts_per_minute_per_address=9,
        )
    )
    assert limits.submissions.capacity == 4 and limits.submissions.rate == 0.2
    assert limits.uploads.capacity == 4
    assert limits.login_account.capacity == 3 and limits.login_address.capacity == 9
