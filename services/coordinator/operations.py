"""The operations page's data: the same ``PipelineStatus`` as ``circles ops status``, polled in the background
so the page never waits on the broker, with throughput over the last minutes from successive samples."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

from schemas.topics import MATCHING_EVENTS, NOTIFICATION_EVENTS, REFERRAL_EVENTS, Service
from services.ops.broker import Broker
from services.ops.status import PipelineStatus, status_from
from services.ops.throughput import RatePoint, ThroughputTracker
from services.ops.topology import consumed_topics
from services.runtime.supervision import supervise


@dataclass(frozen=True)
class ServiceRate:
    service: str
    per_second_1m: float | None
    per_second_5m: float | None


@dataclass(frozen=True)
class ChartLine:
    label: str
    points: str  # an SVG polyline's points
    latest: float


@dataclass(frozen=True)
class OperationsView:
    status: PipelineStatus
    rates: list[ServiceRate]
    chart: list[ChartLine]
    chart_peak: float


CHARTED = {
    REFERRAL_EVENTS.name: "Referral events",
    MATCHING_EVENTS.name: "Matching events",
    NOTIFICATION_EVENTS.name: "Messages delivered or dead-lettered",
}
"""Topics whose write rate the page charts, with the legend's words."""
CHART_WIDTH = 600
CHART_HEIGHT = 160


def processed(tracker: ThroughputTracker, service: Service, window_s: float) -> float | None:
    """Events per second one service's group committed over the window, across its consumed topics."""
    rates = [tracker.rate(f"{service.value}/{spec.name}", window_s) for spec in consumed_topics(service)]
    known = [rate for rate in rates if rate is not None]
    return round(sum(known), 2) if known else None


def chart_lines(
    series: dict[str, list[RatePoint]], now: datetime, horizon_s: float
) -> tuple[list[ChartLine], float]:
    """Polylines of events per second against time (the last ``horizon_s``), one per series, on one scale."""
    visible = {
        label: [(horizon_s - (now - p.at).total_seconds(), p.per_second) for p in points]
        for label, points in series.items()
    }
    visible = {label: [(t, v) for t, v in points if t >= 0] for label, points in visible.items()}
    peak = max((value for points in visible.values() for _, value in points), default=0.0)
    scale = peak if peak > 0 else 1.0
    lines = []
    for label, points in visible.items():
        coords = " ".join(
            f"{CHART_WIDTH * t / horizon_s:.1f},{CHART_HEIGHT * (1 - value / scale):.1f}"
            for t, value in points
        )
        lines.append(ChartLine(label, coords, points[-1][1] if points else 0.0))
    return lines, peak


class OperationsMonitor:
    """Keeps one read-only broker connection and samples the pipeline every ``interval_s``."""

    def __init__(self, bootstrap_servers: str, prefix: str, interval_s: float = 5.0) -> None:
        self.bootstrap = bootstrap_servers
        self.prefix = prefix
        self.interval_s = interval_s
        self.tracker = ThroughputTracker()
        self.latest: PipelineStatus | None = None
        self._task: asyncio.Task[None] | None = None
        self._broker: Broker | None = None

    async def start(self) -> None:
        self._task = supervise("operations-monitor", self._sample, every=self.interval_s)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    async def _sample(self) -> None:
        """One sample (supervised: a failure is retried with back-off; the page shows the last sample)."""
        try:
            if self._broker is None:
                broker = Broker(self.bootstrap, client_id="circles-coordinator-ops")
                await broker.__aenter__()
                self._broker = broker
            async with asyncio.timeout(30):
                status = await status_from(self._broker, self.prefix)
        except Exception:
            await self._close()  # a new connection next time
            raise
        self.latest = status
        self.tracker.observe(status)

    async def _close(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.__aexit__(None, None, None)

    def view(self) -> OperationsView | None:
        status = self.latest
        if status is None:
            return None
        services = [Service(s.service) for s in status.services]
        rates = [
            ServiceRate(s.value, processed(self.tracker, s, 60), processed(self.tracker, s, 300))
            for s in services
        ]
        shown = {topic.topic for topic in status.topics}
        series = {label: self.tracker.series(name) for name, label in CHARTED.items() if name in shown}
        lines, peak = chart_lines(series, status.taken_at, self.tracker.horizon_s)
        return OperationsView(status=status, rates=rates, chart=lines, chart_peak=round(peak, 1))
