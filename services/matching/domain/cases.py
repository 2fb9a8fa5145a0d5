"""A referral case, as the matching service keeps it: profile, proposals, decisions and circle."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas.common import PERSONAL, AgencyId, Contract, Reason, RiskLevel, VolunteerId
from schemas.events.matching import ChosenVolunteer, PassedOver, ProposalFlag
from schemas.events.referrals import ReferralProfile

RISK_RANK = {RiskLevel.VERY_HIGH: 0, RiskLevel.HIGH: 1, RiskLevel.MEDIUM: 2, RiskLevel.LOW: 3}
APPLIED_KEPT = 32
"""How many recent inbox event ids a case remembers, to recognise one processed again after a crash."""


class CaseStatus(StrEnum):
    AWAITING_VOLUNTEERS = "awaiting_volunteers"
    PROPOSED = "proposed"
    CIRCLE_FORMED = "circle_formed"
    CLOSED = "closed"


ProposalStatus = Literal["open", "accepted", "rejected", "cancelled"]


class ProposalRecord(Contract):
    proposal_id: uuid.UUID
    attempt: int
    volunteers: list[ChosenVolunteer]
    passed_over: list[PassedOver]
    flags: list[ProposalFlag]
    score: float
    policy_version: str
    proposed_at: AwareDatetime
    status: ProposalStatus = "open"
    decided_at: AwareDatetime | None = None
    decided_by: str | None = None
    note: Annotated[str | None, Field(json_schema_extra=PERSONAL)] = None
    rejected_volunteer_ids: list[VolunteerId] = []

    @property
    def volunteer_ids(self) -> list[str]:
        return [v.volunteer_id for v in self.volunteers]


class CircleRecord(Contract):
    circle_id: uuid.UUID
    volunteer_ids: list[VolunteerId]
    formed_at: AwareDatetime
    formed_on: date
    ended_on: date | None = Field(default=None, description="The circle ended: its volunteers are free")


class Case(Contract):
    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: str
    profile: ReferralProfile
    version: int
    status: CaseStatus
    eligible_since: AwareDatetime
    proposals: list[ProposalRecord] = []
    excluded: list[VolunteerId] = []
    circle: CircleRecord | None = None
    deferral_reasons: list[Reason] = []
    closed_reason: str | None = None
    correlation_id: str = ""
    applied: list[uuid.UUID] = []

    @property
    def open_proposal(self) -> ProposalRecord | None:
        return next((p for p in self.proposals if p.status == "open"), None)

    def priority(self) -> tuple[int, date, str, str]:
        """Waiting order: risk (very high first), then the earliest release date (in the community: first)."""
        release = self.profile.expected_release_date or date.min
        return (
            RISK_RANK[self.profile.risk_level],
            release,
            self.eligible_since.isoformat(),
            str(self.referral_id),
        )

    def remembering(self, cause: uuid.UUID) -> list[uuid.UUID]:
        return [*self.applied, cause][-APPLIED_KEPT:]
