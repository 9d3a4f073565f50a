"""Token buckets: the gateway's per API key for calls, and every server's per peer
address for failed authentications (``services.common.throttle``).

Each replica keeps its own buckets (a limit per replica): a caller spread over N
replicas gets at most N times the rate, which is the usual trade for not putting a
shared store on every request's path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def _refilled(self, key: str, now: float | None) -> _Bucket:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 when allowed; otherwise the seconds to wait before a retry can succeed."""
        bucket = self._refilled(key, now)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def wait(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """What :meth:`take` would answer, without taking anything."""
        bucket = self._refilled(key, now)
        return 0.0 if bucket.tokens >= cost else (cost - bucket.tokens) / self.rate
