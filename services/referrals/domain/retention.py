"""The retention policy: when a referral's personal data has been kept long enough.

Closed referrals (withdrawn, or a circle formed) keep it for ``closed_days`` after they closed; ineligible
ones, which no circle will ever need, for ``ineligible_days`` after the decision (unless amended since).
Open referrals are not kept for ever either: one that waits for information the agency never sends
(``needs_information``) is due ``needs_information_days`` after its last change, and any other open one
``open_days`` (when set) after its last change or its expected release, whichever is later: a referral
nobody has touched for that long is no longer in use.
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
    needs_information_days: int = Field(
        default=180, ge=1, description="After the last change of a referral still waiting for information"
    )
    open_days: int | None = Field(
        default=None, ge=1, description="After the last change (or release) of any other open referral"
    )


def closed_on(record: ReferralRecord) -> date | None:
    """The day the referral closed (None while it is open)."""
    if record.status is ReferralStatus.INELIGIBLE and record.decision is not None:
        return scheme_today(record.decision.decided_at)
    if record.status in {ReferralStatus.WITHDRAWN, ReferralStatus.CIRCLE_FORMED, ReferralStatus.CIRCLE_ENDED}:
        closing = [entry.time for entry in record.history if entry.type in CLOSING_EVENTS]
        return scheme_today(max(closing) if closing else record.updated_at)
    return None


def last_active_on(record: ReferralRecord) -> date:
    """An open referral's last change, or its expected release if that is later (it waits for it)."""
    release = record.submission.custody.expected_release_date if record.submission else None
    changed = scheme_today(record.updated_at)
    return max(changed, release) if release else changed


def due_for_erasure(record: ReferralRecord, today: date, policy: RetentionPolicy) -> bool:
    if record.erased:
        return False
    closed = closed_on(record)
    if closed is None:
        if record.status is ReferralStatus.NEEDS_INFORMATION:
            return (today - scheme_today(record.updated_at)).days >= policy.needs_information_days
        return policy.open_days is not None and (today - last_active_on(record)).days >= policy.open_days
    keep = policy.ineligible_days if record.status is ReferralStatus.INELIGIBLE else policy.closed_days
    return (today - closed).days >= keep


def due(records: list[ReferralRecord], now: datetime, policy: RetentionPolicy) -> list[ReferralRecord]:
    today = scheme_today(now)
    return sorted((r for r in records if due_for_erasure(r, today, policy)), key=lambda r: r.submitted_at)
