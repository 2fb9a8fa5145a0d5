"""What the coordinator page and the commissioner report know about each referral and each message that
could not be delivered: facts taken from public events (ids, areas, statuses, times), nothing personal."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime

from schemas.common import AgencyId, Contract, LocalAuthority, Outcome, ReferralStatus, RiskLevel
from schemas.envelope import Event
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed, ProposalCancelled
from schemas.events.notifications import NotificationDeadLettered
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn
from schemas.referral_status import after_decision, after_matching

SEEN_KEPT = 32


class ReferralFacts(Contract):
    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: str
    status: ReferralStatus
    local_authority: LocalAuthority
    risk_level: RiskLevel
    submitted_at: AwareDatetime
    decided_at: AwareDatetime | None = None
    outcome: Outcome | None = None
    reason_codes: list[str] = []
    proposed_at: AwareDatetime | None = None
    circle_id: uuid.UUID | None = None
    circle_formed_at: AwareDatetime | None = None
    withdrawn_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    seen: list[uuid.UUID] = []


class DeadLetterFact(Contract):
    notification_id: uuid.UUID
    referral_id: uuid.UUID | None
    channel: str
    recipient_id: str
    reason: str
    at: AwareDatetime


def follow(
    facts: ReferralFacts | None, event: Event, event_id: uuid.UUID, at: datetime
) -> ReferralFacts | None:
    """The facts after ``event`` (``None``: nothing to change, or nothing known yet to change)."""
    if facts is not None and event_id in facts.seen:
        return None
    if isinstance(event, ReferralSubmitted):
        if facts is not None:
            return _seen(facts.model_copy(update={"updated_at": at}), event_id)
        profile = event.profile
        return _seen(
            ReferralFacts(
                referral_id=event.referral_id,
                agency_id=event.agency_id,
                agency_reference=event.agency_reference,
                status=ReferralStatus.RECEIVED,
                local_authority=profile.local_authority,
                risk_level=profile.risk_level,
                submitted_at=event.submitted_at,
                updated_at=at,
            ),
            event_id,
        )
    if facts is None:
        return None  # an event about a referral submitted before this projection began
    if isinstance(event, ReferralAssessed):
        decision = event.decision
        return _seen(
            facts.model_copy(
                update={
                    "status": after_decision(facts.status, decision.outcome),
                    "outcome": decision.outcome,
                    "reason_codes": [reason.code for reason in decision.reasons],
                    "decided_at": facts.decided_at or decision.decided_at,
                    "local_authority": event.profile.local_authority,
                    "risk_level": event.profile.risk_level,
                    "updated_at": at,
                }
            ),
            event_id,
        )
    if isinstance(event, ReferralWithdrawn):
        withdrawal = {
            "status": ReferralStatus.WITHDRAWN,
            "withdrawn_at": event.withdrawn_at,
            "updated_at": at,
        }
        return _seen(facts.model_copy(update=withdrawal), event_id)
    if isinstance(event, MatchProposed | MatchDeferred | CircleFormed | ProposalCancelled):
        update: dict[str, object] = {
            "status": after_matching(facts.status, facts.outcome, event),
            "updated_at": at,
        }
        if isinstance(event, MatchProposed):
            update["proposed_at"] = facts.proposed_at or event.proposed_at
        if isinstance(event, CircleFormed):
            update |= {"circle_id": event.circle_id, "circle_formed_at": event.formed_at}
        return _seen(facts.model_copy(update=update), event_id)
    return None


def dead_letter(event: NotificationDeadLettered) -> DeadLetterFact:
    return DeadLetterFact(
        notification_id=event.notification_id,
        referral_id=event.referral_id,
        channel=event.channel.value,
        recipient_id=event.recipient_id,
        reason=event.reason,
        at=event.dead_lettered_at,
    )


def _seen(facts: ReferralFacts, event_id: uuid.UUID) -> ReferralFacts:
    return facts.model_copy(update={"seen": [*facts.seen, event_id][-SEEN_KEPT:]})
