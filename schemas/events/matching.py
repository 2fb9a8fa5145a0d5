"""Events of the matching service and the coordinator's decisions.

Proposals name volunteers by id only, with the reasons for each choice; never a volunteer's name.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import (
    PERSONAL,
    AgencyId,
    Contract,
    CoordinatorId,
    LocalAuthority,
    Reason,
    RiskLevel,
    VolunteerId,
)
from schemas.envelope import Event


class ChosenVolunteer(Contract):
    volunteer_id: VolunteerId
    reasons: list[Reason] = Field(description="Which rules this volunteer satisfied")


class PassedOver(Contract):
    volunteer_id: VolunteerId
    reasons: list[Reason] = Field(description="Why this volunteer was not chosen")


class ProposalFlag(StrEnum):
    BEYOND_YEARLY_TARGET = "beyond_yearly_target"
    SINGLE_GENDER = "single_gender"
    NO_EXPERIENCED_VOLUNTEER = "no_experienced_volunteer"


class _MatchingEvent(Event):
    referral_id: uuid.UUID
    agency_id: AgencyId

    def partition_key(self) -> str:
        return str(self.referral_id)


class MatchProposed(_MatchingEvent):
    """A circle of volunteers is proposed to the coordinator; they are held until the decision."""

    event_type: ClassVar[str] = "circles.match.proposed.v1"
    proposal_id: uuid.UUID
    attempt: int = Field(
        ge=1, description="1 for the first proposal for this referral, 2 after a rejection..."
    )
    volunteers: list[ChosenVolunteer] = Field(min_length=1)
    passed_over: list[PassedOver]
    flags: list[ProposalFlag]
    score: float
    risk_level: RiskLevel
    policy_version: str
    proposed_at: AwareDatetime


class MatchDeferred(_MatchingEvent):
    """No valid circle can be formed yet: the referral waits for volunteers (status awaiting_volunteers)."""

    event_type: ClassVar[str] = "circles.match.deferred.v1"
    reasons: list[Reason]
    policy_version: str
    deferred_at: AwareDatetime


class ProposalCancelled(_MatchingEvent):
    """An open proposal was cancelled because its referral was withdrawn or is no longer eligible."""

    event_type: ClassVar[str] = "circles.match.cancelled.v1"
    proposal_id: uuid.UUID
    reason: Literal["referral_withdrawn", "referral_no_longer_eligible"]
    cancelled_at: AwareDatetime


class MatchDecided(_MatchingEvent):
    """The coordinator accepted or rejected a proposal (from the CLI or the coordinator page)."""

    event_type: ClassVar[str] = "circles.match.decided.v1"
    decision_id: uuid.UUID
    proposal_id: uuid.UUID
    outcome: Literal["accept", "reject"]
    rejected_volunteer_ids: list[VolunteerId] = Field(
        default=[], description="On reject: only these are excluded from the next proposal; empty: all"
    )
    note: Annotated[str, StringConstraints(max_length=1000), Field(json_schema_extra=PERSONAL)] | None = None
    decided_by: CoordinatorId
    decided_at: AwareDatetime

    def data_subject(self) -> str:
        """The coordinator's free-text note may say anything about the referral: sealed with a key of the
        referral's decisions, which the matching service holds and destroys when the referral is erased."""
        return f"decision:{self.referral_id}"


class CircleFormed(_MatchingEvent):
    event_type: ClassVar[str] = "circles.circle.formed.v1"
    circle_id: uuid.UUID
    proposal_id: uuid.UUID
    volunteer_ids: list[VolunteerId]
    local_authority: LocalAuthority
    formed_at: AwareDatetime
    year: int
    circles_formed_in_year: int
    yearly_target: int


class ReminderKind(StrEnum):
    DBS_EXPIRING = "dbs_expiring"
    SUPERVISION_OVERDUE = "supervision_overdue"


class VolunteerReminderDue(Event):
    """A volunteer's DBS check is about to lapse, or supervision is overdue: the coordinator should act."""

    event_type: ClassVar[str] = "circles.volunteer.reminder-due.v1"
    volunteer_id: VolunteerId
    kind: ReminderKind
    due_on: date
    days_left: int
    raised_on: date

    def partition_key(self) -> str:
        return self.volunteer_id
