"""The coordinator's referral queue: referrals by status, with their age and the service level each is
being held to."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.common import ReferralStatus
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.service_levels import ACKNOWLEDGEMENT_OVERDUE, ServiceLevels, clocks
from services.referral_progress.workdays import working_days_between

QUEUE_ORDER = [
    ReferralStatus.RECEIVED,
    ReferralStatus.NEEDS_INFORMATION,
    ReferralStatus.ELIGIBLE,
    ReferralStatus.AWAITING_VOLUNTEERS,
    ReferralStatus.PROPOSED,
    ReferralStatus.DEFERRED,
    ReferralStatus.CIRCLE_FORMED,
    ReferralStatus.INELIGIBLE,
    ReferralStatus.WITHDRAWN,
]
CLOCK_NAMES = {ACKNOWLEDGEMENT_OVERDUE: "acknowledgement"}


@dataclass(frozen=True)
class QueueRow:
    referral_id: uuid.UUID
    agency_id: str
    agency_reference: str
    status: ReferralStatus
    submitted_at: datetime | None
    age_working_days: int | None
    clock: str | None  # "acknowledgement" or "decision"
    due_at: datetime | None
    overdue: bool
    working_days_left: int | None  # negative: overdue by that many


def queue(
    progress: Iterable[ReferralProgress], now: datetime, levels: ServiceLevels
) -> dict[ReferralStatus, list[QueueRow]]:
    """Every referral under its status, the most pressing (overdue, then due soonest) first."""
    by_status: dict[ReferralStatus, list[QueueRow]] = {status: [] for status in QUEUE_ORDER}
    for item in progress:
        running = sorted(clocks(item, levels), key=lambda clock: clock.due_at)
        clock = running[0] if running else None
        left = None
        if clock is not None:
            left = (
                working_days_between(now, clock.due_at, levels.holidays)
                if clock.due_at > now
                else -(working_days_between(clock.due_at, now, levels.holidays))
            )
        by_status.setdefault(item.status, []).append(
            QueueRow(
                referral_id=item.referral_id,
                agency_id=item.agency_id,
                agency_reference=item.agency_reference or "",
                status=item.status,
                submitted_at=item.submitted_at,
                age_working_days=(
                    working_days_between(item.submitted_at, now, levels.holidays)
                    if item.submitted_at
                    else None
                ),
                clock=CLOCK_NAMES.get(clock.kind, "decision") if clock else None,
                due_at=clock.due_at if clock else None,
                overdue=bool(clock and now >= clock.due_at),
                working_days_left=left,
            )
        )
    for rows in by_status.values():
        rows.sort(
            key=lambda row: (
                not row.overdue,
                row.due_at or datetime.max.replace(tzinfo=now.tzinfo),
                str(row.referral_id),
            )
        )
    return by_status
