"""How a referral's status (the partner API's ``status`` field) follows from its decisions and from the
matching service's events, in the referrals service's own record."""

from __future__ import annotations

from schemas.common import Outcome, ReferralStatus
from schemas.events.circles import CircleEnded
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed, ProposalCancelled

MATCHING_PROGRESS = frozenset(
    {
        ReferralStatus.PROPOSED,
        ReferralStatus.AWAITING_VOLUNTEERS,
        ReferralStatus.CIRCLE_FORMED,
        ReferralStatus.CIRCLE_ENDED,
    }
)
MatchingEvent = MatchProposed | MatchDeferred | CircleFormed | ProposalCancelled | CircleEnded
"""What moves a referral on after its decision: the matching service's events, and the circles service's
ending of its circle."""


def after_decision(current: ReferralStatus | None, outcome: Outcome) -> ReferralStatus:
    """A new eligible decision keeps the matching progress already made; any other outcome replaces it."""
    if outcome is Outcome.ELIGIBLE and current in MATCHING_PROGRESS:
        assert current is not None
        return current
    return ReferralStatus(outcome.value)


def after_matching(
    current: ReferralStatus, latest_outcome: Outcome | None, event: MatchingEvent
) -> ReferralStatus:
    """Matching moves an eligible, not withdrawn referral along; a late one for an ineligible one cannot."""
    if latest_outcome is not Outcome.ELIGIBLE or current is ReferralStatus.WITHDRAWN:
        return current
    if isinstance(event, MatchProposed):
        return ReferralStatus.PROPOSED
    if isinstance(event, MatchDeferred):
        return ReferralStatus.AWAITING_VOLUNTEERS
    if isinstance(event, CircleFormed):
        return ReferralStatus.CIRCLE_FORMED
    if isinstance(event, CircleEnded):
        return ReferralStatus.CIRCLE_ENDED
    return current
