"""Events per second from successive status samples, for ``--watch`` and the operations page.

End offsets only grow, so the events written to a topic between two samples are the difference of their
end offsets; likewise a group's committed offsets give what it processed. The tracker keeps samples for a
horizon (ten minutes by default) and answers rates over any window within it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel

from services.ops.status import PipelineStatus


class RatePoint(BaseModel):
    """The rate between two successive samples, stamped with the later one."""

    at: datetime
    per_second: float


class ThroughputTracker:
    """Feed it ``observe(status)`` (or ``observe_counts``) after each status read.

    Keys: a topic name (``circles.referrals.events.v1``: events written) or ``service/topic``
    (``matching/circles.referrals.events.v1``: events that group processed and committed).
    """

    def __init__(self, horizon_s: float = 600.0) -> None:
        self.horizon_s = horizon_s
        self._samples: deque[tuple[datetime, dict[str, int]]] = deque()

    def observe(self, status: PipelineStatus) -> None:
        counts = {topic.topic: topic.end_offset for topic in status.topics}
        for service in status.services:
            for consumed in service.topics:
                if consumed.committed is not None:
                    counts[f"{service.service}/{consumed.topic}"] = consumed.committed
        self.observe_counts(status.taken_at, counts)

    def observe_counts(self, at: datetime, counts: Mapping[str, int]) -> None:
        if self._samples and at <= self._samples[-1][0]:
            return  # out of order or repeated: ignore
        self._samples.append((at, dict(counts)))
        while len(self._samples) > 2 and (at - self._samples[1][0]).total_seconds() >= self.horizon_s:
            self._samples.popleft()

    def rate(self, key: str, window_s: float = 60.0) -> float | None:
        """Events per second over the last ``window_s`` (from the oldest sample inside it); None until two
        samples hold the key."""
        if not self._samples:
            return None
        latest_at, latest = self._samples[-1]
        if key not in latest:
            return None
        for at, counts in self._samples:
            elapsed = (latest_at - at).total_seconds()
            if elapsed <= window_s and key in counts and elapsed > 0:
                return max(0, latest[key] - counts[key]) / elapsed
        return None

    def rates(self, window_s: float = 60.0) -> dict[str, float]:
        """Every key's rate over the window (keys with fewer than two samples are left out)."""
        if not self._samples:
            return {}
        found = {key: self.rate(key, window_s) for key in self._samples[-1][1]}
        return {key: value for key, value in found.items() if value is not None}

    def series(self, key: str) -> list[RatePoint]:
        """The rate between each pair of successive samples over the horizon: a chart's points."""
        points = []
        previous: tuple[datetime, dict[str, int]] | None = None
        for at, counts in self._samples:
            if previous is not None and key in counts and key in previous[1]:
                elapsed = (at - previous[0]).total_seconds()
                points.append(RatePoint(at=at, per_second=max(0, counts[key] - previous[1][key]) / elapsed))
            previous = (at, counts)
        return points
