"""Service levels: a referral is acknowledged within one working day and decided within ten (both
configurable); one that waits longer is escalated to the coordinator, once per wait.

"Acknowledged" is the first assessment (the agency is told the outcome). "Decided" means the scheme has
answered: ineligible, a circle formed, or withdrawn. The decision clock runs from submission, stops while
the referral waits on others (information from the agency, a release date outside the window), and starts
again when it becomes eligible after such a wait or is amended.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date, datetime

from schemas.common import ReferralStatus
from services.referral_progress.progress import IN_MATCHING, ReferralProgress
from services.referral_progress.workdays import add_working_days, working_days_between

ACKNOWLEDGEMENT_OVERDUE = "acknowledgement_overdue"
DECISION_OVERDUE = "decision_overdue"


@dataclass(frozen=True)
class ServiceLevels:
    acknowledge_within_days: int = 1
    decide_within_days: int = 10
    holidays: Container[date] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Escalation:
    kind: str
    clock_from: datetime
    due_at: datetime
    waiting_days: int

    @property
    def key(self) -> str:
        """Names this wait: a referral is escalated once per kind and clock start."""
        return f"{self.kind}:{self.clock_from.isoformat()}"


@dataclass(frozen=True)
class RunningClock:
    """A service level the referral is being held to now: which, since when, and due by when."""

    kind: str
    started: datetime
    due_at: datetime


def clocks(progress: ReferralProgress, levels: ServiceLevels) -> list[RunningClock]:
    """The service-level clocks running for a referral (none once the scheme has answered)."""
    running: list[RunningClock] = []
    if (
        progress.status is ReferralStatus.RECEIVED
        and progress.acknowledged_at is None
        and progress.submitted_at
    ):
        due = add_working_days(progress.submitted_at, levels.acknowledge_within_days, levels.holidays)
        running.append(RunningClock(ACKNOWLEDGEMENT_OVERDUE, progress.submitted_at, due))
    deciding = progress.status is ReferralStatus.RECEIVED or progress.status in IN_MATCHING
    if deciding and progress.clock_from is not None:
        due = add_working_days(progress.clock_from, levels.decide_within_days, levels.holidays)
        running.append(RunningClock(DECISION_OVERDUE, progress.clock_from, due))
    return running


def escalations(progress: ReferralProgress, now: datetime, levels: ServiceLevels) -> list[Escalation]:
    """The overdue waits of one referral not escalated yet."""
    found = [
        Escalation(
            clock.kind, clock.started, clock.due_at, working_days_between(clock.started, now, levels.holidays)
        )
        for clock in clocks(progress, levels)
        if now >= clock.due_at
    ]
    return [escalation for escalation in found if escalation.key not in progress.escalated]


def next_escalation_at(progress: ReferralProgress, levels: ServiceLevels) -> datetime | None:
    """When this referral's next escalation falls due (a running clock not escalated yet), if ever."""
    waiting = [
        clock.due_at
        for clock in clocks(progress, levels)
        if Escalation(clock.kind, clock.started, clock.due_at, 0).key not in progress.escalated
    ]
    return min(waiting, default=None)


def overdue(progress: ReferralProgress, now: datetime, levels: ServiceLevels) -> bool:
    """Waiting past a service level now (escalated or not): for the digest's count."""
    unmarked = progress.model_copy(update={"escalated": []})
    return bool(escalations(unmarked, now, levels))
