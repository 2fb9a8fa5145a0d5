"""``circles ops status --check``: the pipeline's health as a monitoring check (cron, Nagios-style checks,
Kubernetes probes): one line per problem and the Nagios plugin exit codes.

The check reads the status twice, ``interval_s`` apart, and judges each service (consumer group):

* **CRITICAL** (exit 2): the service has no worker in the second reading (its group has no members).
* **WARNING** (exit 1): its lag *grew* between the readings by more than ``lag_tolerance`` records (more was
  written than processed: the workers are falling behind); or its lag was above 0 in both readings and it
  committed nothing in between (it is stuck, or a rebalance lasted the whole interval).
* **WARNING**: a dead-letter topic of a topic it consumes holds dead letters not yet replayed.

The tolerance (default 100 records) absorbs the jitter of a busy, healthy worker: its lag at any instant
includes the batch it has not committed yet (it commits about every second). OK is exit 0; 3 (UNKNOWN) means
the check could not run (no broker configured); a broker that cannot be reached is CRITICAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from services.ops.broker import Broker
from services.ops.status import PipelineStatus, ServiceStatus, dead_letters_waiting, no_worker, status_from

DEFAULT_INTERVAL_S = 5.0
DEFAULT_LAG_TOLERANCE = 100


class Severity(IntEnum):
    """The Nagios plugin convention: the exit status of the check."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str

    def line(self) -> str:
        return f"{self.severity.name}: {self.message}"


def _judged(status: PipelineStatus, services: Iterable[str]) -> list[ServiceStatus]:
    """The named services; all when none are named."""
    named = set(services)
    return [service for service in status.services if not named or service.service in named]


def _committed(service: ServiceStatus) -> int:
    return sum(topic.committed or 0 for topic in service.topics)


def findings(
    first: PipelineStatus,
    second: PipelineStatus,
    *,
    lag_tolerance: int = DEFAULT_LAG_TOLERANCE,
    services: Iterable[str] = (),
) -> list[Finding]:
    """What is wrong, judged from two readings (``first`` older); only ``services`` when any are named.
    Most severe first."""
    wanted = {service.service for service in _judged(second, services)}
    seconds = (second.taken_at - first.taken_at).total_seconds()
    found: list[Finding] = []
    topics: set[str] = set()
    for now in second.services:
        if now.service not in wanted:
            continue
        before = first.service(now.service)
        topics |= {topic.topic for topic in now.topics}
        if now.active_members == 0:
            found.append(Finding(Severity.CRITICAL, no_worker(now)))
        if now.lag > before.lag + lag_tolerance:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{now.service}: lag growing, {before.lag} -> {now.lag} in {seconds:.0f}s "
                    "(more written than processed)",
                )
            )
        elif before.lag > 0 and now.lag > 0 and _committed(now) == _committed(before):
            stuck = f"{now.service}: lag {now.lag} and nothing processed in {seconds:.0f}s"
            found.append(Finding(Severity.WARNING, stuck))
    found += [
        Finding(Severity.WARNING, dead_letters_waiting(topic))
        for topic in second.topics
        if topic.topic in topics and topic.dead_letters_pending
    ]
    return sorted(found, key=lambda finding: -finding.severity)


def verdict(found: list[Finding]) -> Severity:
    return max((finding.severity for finding in found), default=Severity.OK)


def report(found: list[Finding], second: PipelineStatus, services: Iterable[str] = ()) -> list[str]:
    """One line per problem; one OK line when there is none."""
    if found:
        return [finding.line() for finding in found]
    judged = _judged(second, services)
    lag = sum(service.lag for service in judged)
    names = ", ".join(service.service for service in judged)
    return [f"OK: {names}: every service has a worker, lag {lag} not growing, no dead letters waiting"]


async def check(
    bootstrap_servers: str,
    prefix: str = "",
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    lag_tolerance: int = DEFAULT_LAG_TOLERANCE,
    services: Iterable[str] = (),
) -> tuple[Severity, list[str]]:
    """Two readings ``interval_s`` apart over one connection; the verdict and its lines."""
    async with Broker(bootstrap_servers) as broker:
        first = await status_from(broker, prefix)
        await asyncio.sleep(interval_s)
        second = await status_from(broker, prefix)
    found = findings(first, second, lag_tolerance=lag_tolerance, services=services)
    return verdict(found), report(found, second, services)
