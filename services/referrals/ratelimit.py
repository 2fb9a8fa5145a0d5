"""Per-agency rate limiting of the partner API: one token bucket per agency.

A bucket holds at most ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; each request
takes one, or is refused (429) with the seconds until one is back (``Retry-After``). A token bucket lets an
agency's system send a batch at once and then holds it to the agreed rate, and it needs two numbers per
agency. Buckets are kept for authenticated agencies only, so their number is bounded by the registry.

The limit holds per API process: behind a load balancer with N replicas an agency may get up to N times
the rate. A shared limit would need shared state on every request (a store, or the broker); the limit is a
guard against a runaway client, not a quota, so per process is enough.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        """``per_minute`` 0: no limit. ``clock``: seconds, monotonic (tests pass their own)."""
        self.per_second = per_minute / 60
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, agency_id: str) -> int:
        """0 if the request may go ahead (a token is taken), else whole seconds until it may."""
        if self.per_second <= 0:
            return 0
        now = self.clock()
        bucket = self._buckets.get(agency_id)
        if bucket is None:
            bucket = self._buckets[agency_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.per_second))
