"""In-process token buckets for per-user and per-address limits.

Each gateway replica keeps its own buckets: with N replicas behind the Serve proxy a client
can get up to N times the configured rate. That is the price of no shared state on the hot
path; the per-user cap on active jobs is counted in the database and holds cluster-wide.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from meshforge.settings import Settings

MAX_KEYS = 50_000  # least recently used keys are forgotten beyond this (memory bound)


@dataclass
class TokenBucket:
    """`capacity` tokens at most, refilled at `rate` tokens per second."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend `cost` tokens and return 0.0, or spend nothing and return the seconds
        until `cost` tokens will be there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class KeyedLimiter:
    """One token bucket per key (a user id, an account name, a client address)."""

    def __init__(
        self,
        capacity: float,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when the request may pass, else the seconds to wait (`Retry-After`)."""
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(self.capacity, self.rate, self.capacity, now)
                self._buckets[key] = bucket
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            return bucket.take(now)


@dataclass
class Limits:
    """The limiters of one gateway replica."""

    submissions: KeyedLimiter
    uploads: KeyedLimiter
    login_account: KeyedLimiter
    login_address: KeyedLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        per_account = settings.login_attempts_per_minute
        per_address = settings.login_attempts_per_minute_per_address
        return cls(
            submissions=KeyedLimiter(
                settings.job_submission_burst, settings.job_submissions_per_minute
            ),
            uploads=KeyedLimiter(
                settings.job_submission_burst, settings.job_submissions_per_minute
            ),
            login_account=KeyedLimiter(per_account, per_account),
            login_address=KeyedLimiter(per_address, per_address),
        )
