"""Throttling of failed sign-ins, per account and per client: a plain, bounded, in-memory ledger.

After ``per_account`` failures for one account (or ``per_client`` for one client address) within
``window_s`` seconds, sign-in is refused for that account (client) until the oldest of those failures
leaves the window: the caller answers 429 with ``Retry-After``, before checking any password, so a guesser
learns nothing from a refused attempt. A success clears the account's failures (its owner typed it right),
not the client's (one client guessing many accounts stays throttled).

Memory is bounded: at most ``max_keys`` accounts and clients are remembered, the least recently failed
forgotten first. Each page process keeps its own ledger, so N processes allow up to N times the limit:
the limit is a brake on guessing, the password strength and scrypt are the wall.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleLimits:
    per_account: int = 5
    per_client: int = 20
    window_s: float = 900.0
    max_keys: int = 10_000


class _Ledger:
    def __init__(self, limit: int, window_s: float, max_keys: int) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def wait(self, key: str, now: float) -> float:
        failures = self._recent(key, now)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return failures[-self.limit] + self.window_s - now

    def fail(self, key: str, now: float) -> None:
        failures = self._recent(key, now) or deque(maxlen=self.limit)
        failures.append(now)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class SignInThrottle:
    def __init__(self, limits: ThrottleLimits) -> None:
        self.accounts = _Ledger(limits.per_account, limits.window_s, limits.max_keys)
        self.clients = _Ledger(limits.per_client, limits.window_s, limits.max_keys)

    def retry_after(self, account_id: str, client: str, now: float) -> int:
        """Whole seconds to wait before this account may be tried from this client (0: go ahead)."""
        wait = max(self.accounts.wait(account_id, now), self.clients.wait(client, now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, account_id: str, client: str, now: float) -> None:
        self.accounts.fail(account_id, now)
        self.clients.fail(client, now)

    def succeeded(self, account_id: str) -> None:
        self.accounts.clear(account_id)
