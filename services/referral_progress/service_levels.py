"""Service levels: a referral is acknowledged within one working day and decided within ten (both
configurable); one that waits longer is escalated to the coordinator, once per wait.

"Acknowledged" is the first assessment (the agency is told the outcome). "Decided" means the scheme has
answered: ineligible, a circle formed, or withdrawn. The decision clock runs from submission, stops while
the referral waits on others (information from the agency, a release date outside the window), and starts
again when it becomes eligible after such a wait or is amended.
"""

from __future__ import annotations

from collections.abc import Collection
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
    holidays: Collection[date] = field(default_factory=frozenset)


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


def escalations(progress: ReferralProgress, now: datetime, levels: ServiceLevels) -> list[Escalation]:
    """The overdue waits of one referral not escalated yet."""
    found: list[Escalation] = []
    if (
        progress.status is ReferralStatus.RECEIVED
        and progress.acknowledged_at is None
        and progress.submitted_at
    ):
        due = add_working_days(progress.submitted_at, levels.acknowledge_within_days, levels.holidays)
        if now >= due:
            waiting = working_days_between(progress.submitted_at, now, levels.holidays)
            found.append(Escalation(ACKNOWLEDGEMENT_OVERDUE, progress.submitted_at, due, waiting))
    running = progress.status is ReferralStatus.RECEIVED or progress.status in IN_MATCHING
    if running and progress.clock_from is not None:
        due = add_working_days(progress.clock_from, levels.decide_within_days, levels.holidays)
        if now >= due:
            waiting = working_days_between(progress.clock_from, now, levels.holidays)
            found.append(Escalation(DECISION_OVERDUE, progress.clock_from, due, waiting))
    return [escalation for escalation in found if escalation.key not in progress.escalated]


def overdue(progress: ReferralProgress, now: datetime, levels: ServiceLevels) -> bool:
    """Waiting past a service level now (escalated or not): for the digest's count."""
    unmarked = progress.model_copy(update={"escalated": []})
    return bool(escalations(unmarked, now, levels))
