"""Each referral's progress as this service follows it from referral and matching events: its status and
the service-level clocks the escalations and the daily digest need.

Events of one referral arrive on two topics (referral events, matching events), so they can be applied in
either order and more than once; ``apply`` is written to give the same result either way.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, Field

from schemas.common import AgencyId, Contract, LocalAuthority, Outcome, ReferralStatus, RiskLevel
from schemas.envelope import Event
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn

SETTLED = frozenset({ReferralStatus.INELIGIBLE, ReferralStatus.CIRCLE_FORMED, ReferralStatus.WITHDRAWN})
"""The scheme has answered: no clock runs."""
WAITING_ON_OTHERS = frozenset({ReferralStatus.NEEDS_INFORMATION, ReferralStatus.DEFERRED})
"""Waiting for the agency (information) or for the release date (deferred): the scheme's clock stops."""
IN_MATCHING = frozenset(
    {ReferralStatus.ELIGIBLE, ReferralStatus.PROPOSED, ReferralStatus.AWAITING_VOLUNTEERS}
)
FOLLOWED = (
    ReferralSubmitted,
    ReferralAssessed,
    ReferralWithdrawn,
    MatchProposed,
    MatchDeferred,
    CircleFormed,
)


class ReferralProgress(Contract):
    """The table value, keyed by referral id. References and times only."""

    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: str | None = None
    status: ReferralStatus = ReferralStatus.RECEIVED
    version: int = 0
    submitted_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    clock_from: AwareDatetime | None = None
    settled_at: AwareDatetime | None = None
    circle_formed_at: AwareDatetime | None = None
    circle_id: uuid.UUID | None = None
    proposed_at: AwareDatetime | None = None
    local_authority: LocalAuthority | None = None
    risk_level: RiskLevel | None = None
    outcome: Outcome | None = None
    reason_codes: list[str] = []
    escalated: list[str] = Field(default=[], description="Waits already escalated (notifications)")
    updated_at: AwareDatetime | None = None


def apply(current: ReferralProgress | None, event: Event, time: datetime) -> ReferralProgress | None:
    """The progress after ``event`` (``None``: the event says nothing about a referral's progress)."""
    if not isinstance(event, FOLLOWED):
        return None
    progress = current or ReferralProgress(referral_id=event.referral_id, agency_id=event.agency_id)
    if isinstance(event, ReferralSubmitted):
        progress = _submitted(progress, event)
    elif isinstance(event, ReferralAssessed):
        progress = _assessed(progress, event)
    elif isinstance(event, ReferralWithdrawn):
        progress = _settle(progress, ReferralStatus.WITHDRAWN, event.withdrawn_at)
    elif isinstance(event, CircleFormed):
        progress = _settle(progress, ReferralStatus.CIRCLE_FORMED, event.formed_at).model_copy(
            update={
                "circle_formed_at": event.formed_at,
                "circle_id": event.circle_id,
                "local_authority": event.local_authority,
            }
        )
    elif isinstance(event, MatchProposed | MatchDeferred) and progress.status in IN_MATCHING | {
        ReferralStatus.RECEIVED
    }:
        status = (
            ReferralStatus.PROPOSED
            if isinstance(event, MatchProposed)
            else ReferralStatus.AWAITING_VOLUNTEERS
        )
        progress = progress.model_copy(update={"status": status})
    if isinstance(event, MatchProposed) and progress.proposed_at is None:
        progress = progress.model_copy(update={"proposed_at": event.proposed_at})
    return progress.model_copy(update={"updated_at": max(time, progress.updated_at or time)})


def _submitted(progress: ReferralProgress, event: ReferralSubmitted) -> ReferralProgress:
    if event.version <= progress.version:
        return progress  # seen already
    update: dict[str, object] = {
        "version": event.version,
        "agency_reference": event.agency_reference,
        "local_authority": event.profile.local_authority,
        "risk_level": event.profile.risk_level,
    }
    if progress.submitted_at is None:
        update |= {"submitted_at": event.submitted_at, "clock_from": event.submitted_at}
    if event.version > 1 and progress.status not in SETTLED:
        # an amendment (e.g. the missing information) restarts the scheme's clock
        update |= {"status": ReferralStatus.RECEIVED, "clock_from": event.submitted_at}
    return progress.model_copy(update=update)


def _assessed(progress: ReferralProgress, event: ReferralAssessed) -> ReferralProgress:
    if event.version < progress.version or progress.status in SETTLED - {ReferralStatus.INELIGIBLE}:
        return progress  # an older version's decision, or the referral has moved past decisions
    decision = event.decision
    update: dict[str, object] = {
        "agency_reference": event.agency_reference,
        "version": event.version,
        "outcome": event.decision.outcome,
        "reason_codes": [reason.code for reason in event.decision.reasons],
        "risk_level": event.profile.risk_level,
    }
    if progress.acknowledged_at is None:
        update["acknowledged_at"] = decision.decided_at
    outcome = decision.outcome
    if outcome is Outcome.ELIGIBLE:
        if progress.status in WAITING_ON_OTHERS:
            update["clock_from"] = decision.decided_at  # the wait was not the scheme's
        if progress.status not in IN_MATCHING:
            update["status"] = ReferralStatus.ELIGIBLE
        update["settled_at"] = None
    elif outcome is Outcome.INELIGIBLE:
        update |= {"status": ReferralStatus.INELIGIBLE, "settled_at": decision.decided_at}
    else:
        update["status"] = ReferralStatus(outcome.value)
    return progress.model_copy(update=update)


def _settle(progress: ReferralProgress, status: ReferralStatus, at: datetime) -> ReferralProgress:
    if progress.status in (ReferralStatus.WITHDRAWN, ReferralStatus.CIRCLE_FORMED):
        return progress
    return progress.model_copy(update={"status": status, "settled_at": at})
