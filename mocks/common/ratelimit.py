"""Per-caller rate limits: one token bucket per key (an agency, a client), refilled continuously.

A bucket holds at most `burst` tokens and gains `per_s` tokens a second; a request takes one token or
is refused with the time until the next token (the caller answers 429 with `Retry-After`). Buckets are
made on first use and live as long as the limiter: the keys are the registered callers, a bounded set.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Rate", "RateLimiter", "TokenBucket", "retry_after"]


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_s` requests a second on average, `burst` at once after a quiet spell."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_s > 0 and burst >= 1, got {self.per_s}/s, burst {self.burst}")


class TokenBucket:
    """One caller's bucket. Not thread-safe on its own: `RateLimiter` serialises access."""

    __slots__ = ("_at", "_tokens", "rate")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._at = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available (nothing taken)."""
        elapsed = max(now - self._at, 0.0)
        self._tokens = min(self.rate.burst, self._tokens + elapsed * self.rate.per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate.per_s


class RateLimiter:
    """Token buckets by key. `check(key, rate)` takes a token from `key`'s bucket, made with `rate`
    (or the default) on first use; a key with neither a rate nor a default is not limited."""

    def __init__(self, default: Rate | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        # The NDXP calls this from the event loop only, but a mock may call it from its thread pool.
        self._lock = threading.Lock()

    def check(self, key: str, rate: Rate | None = None) -> float:
        """0.0 if `key` may go ahead now, else the seconds it should wait before trying again."""
        rate = rate or self.default
        if rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[key] = TokenBucket(rate, now)
            return bucket.take(now)


def retry_after(wait_s: float) -> str:
    """A `Retry-After` value (whole seconds, at least 1) for a wait of `wait_s` seconds."""
    return str(max(1, math.ceil(wait_s)))
