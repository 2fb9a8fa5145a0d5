"""The retention policy: when a referral's personal data has been kept long enough.

Closed referrals (withdrawn, or a circle formed) keep it for ``closed_days`` after they closed; ineligible
ones, which no circle will ever need, for ``ineligible_days`` after the decision (unless amended since).
Referrals still open are never due: their data is in use.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from schemas.common import Contract, ReferralStatus
from schemas.events.circles import CircleEnded
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralWithdrawn
from services.referrals.domain.referral import ReferralRecord, scheme_today

CLOSING_EVENTS = {ReferralWithdrawn.event_type, CircleFormed.event_type, CircleEnded.event_type}


class RetentionPolicy(Contract):
    closed_days: int = Field(default=6 * 365, ge=1, description="After withdrawal or a circle formed")
    ineligible_days: int = Field(default=90, ge=1, description="After an ineligible decision")


def closed_on(record: ReferralRecord) -> date | None:
    """The day the referral closed (None while it is open)."""
    if record.status is ReferralStatus.INELIGIBLE and record.decision is not None:
        return scheme_today(record.decision.decided_at)
    if record.status in {ReferralStatus.WITHDRAWN, ReferralStatus.CIRCLE_FORMED, ReferralStatus.CIRCLE_ENDED}:
        closing = [entry.time for entry in record.history if entry.type in CLOSING_EVENTS]
        return scheme_today(max(closing) if closing else record.updated_at)
    return None


def due_for_erasure(record: ReferralRecord, today: date, policy: RetentionPolicy) -> bool:
    if record.erased:
        return False
    closed = closed_on(record)
    if closed is None:
        return False
    keep = policy.ineligible_days if record.status is ReferralStatus.INELIGIBLE else policy.closed_days
    return (today - closed).days >= keep


def due(records: list[ReferralRecord], now: datetime, policy: RetentionPolicy) -> list[ReferralRecord]:
    today = scheme_today(now)
    return sorted((r for r in records if due_for_erasure(r, today, policy)), key=lambda r: r.submitted_at)
