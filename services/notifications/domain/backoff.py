"""When to try a failed delivery again: exponential back-off with jitter.

The jitter is drawn from the notification id and attempt rather than a random generator, so that after a
crash the same failure is given the same retry time, and many messages failing together (a receiver that
is down) still spread their retries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 40.0
    """Ceiling of the first wait; the first retry comes after half to all of it (within a minute)."""
    cap_s: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempt: int, key: str) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        ceiling: float = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * _fraction(f"{key}:{attempt}"))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def _fraction(seed: str) -> float:
    """A number in [0, 1) determined by ``seed``."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64
