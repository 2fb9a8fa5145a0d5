"""The coordinator's side of the matching service: volunteer and proposal views, and the requests that
change them. The CLI (``--json``) and the HTTP API (for the coordinator page) use these same models."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from schemas.common import (
    NOT_BLANK,
    PERSONAL,
    AgencyId,
    AvailabilitySlot,
    Contract,
    Gender,
    LocalAuthority,
    PostcodeDistrict,
    RiskLevel,
    Skill,
    VolunteerId,
)
from schemas.events.circles import CircleId
from schemas.events.matching import ChosenVolunteer, PassedOver, ProposalFlag

VolunteerName = Annotated[
    str, StringConstraints(min_length=1, max_length=120, pattern=NOT_BLANK), Field(json_schema_extra=PERSONAL)
]
Note = Annotated[str, StringConstraints(max_length=1000)]
ProposalStatus = Literal["open", "accepted", "rejected", "cancelled"]
ACTING_ACCOUNT_HEADER = "X-Circles-Account"
"""The coordinator page names the signed-in account in this header of its calls to the matching API, which
records it as who decided (``MatchDecided.decided_by``) or asked for a change; without it, the token's holder
(``coordinator``)."""


class VolunteerView(Contract):
    volunteer_id: VolunteerId
    name: VolunteerName
    gender: Gender
    local_authority: LocalAuthority
    postcode_district: PostcodeDistrict
    experienced: bool
    skills: list[Skill]
    availability: list[AvailabilitySlot]
    max_circles: int
    matchable: bool = Field(description="Passes every hard rule about the volunteer (referral aside)")
    not_matchable_because: list[str] = Field(description="Reason codes of the hard rules not met")
    open_proposals: list[uuid.UUID]
    circles: list[CircleId] = Field(
        description="Circles the volunteer sits in (still active), named circle-<referral id> as everywhere"
    )
    dbs_checked_on: date | None
    dbs_expires_on: date | None
    trained_on: date | None
    last_supervised_on: date | None
    supervision_due_on: date | None
    withdrawn: bool
    registered_on: date | None = None
    withdrawn_on: date | None = None


class ProposalView(Contract):
    proposal_id: uuid.UUID
    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: str
    attempt: int
    status: ProposalStatus
    volunteers: list[ChosenVolunteer]
    passed_over: list[PassedOver]
    flags: list[ProposalFlag]
    score: float
    risk_level: RiskLevel
    local_authority: LocalAuthority
    priority: int | None = Field(description="Place in the coordinator's queue of open proposals (1 = first)")
    proposed_at: AwareDatetime
    decided_at: AwareDatetime | None
    decided_by: str | None
    note: str | None
    rejected_volunteer_ids: list[VolunteerId]


class VolunteerRegistration(Contract):
    volunteer_id: VolunteerId
    name: VolunteerName
    gender: Gender
    local_authority: LocalAuthority
    postcode_district: PostcodeDistrict
    experienced: bool = False
    skills: list[Skill] = []
    max_circles: int | None = Field(default=None, ge=1, le=10)
    availability: list[AvailabilitySlot] = []


class DatedRecord(Contract):
    """A DBS check, core training or supervision session, on a day not in the future."""

    date: date


class ConflictDeclaration(Contract):
    postcode_district: PostcodeDistrict | None = None
    referral_id: uuid.UUID | None = None
    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK),
        Field(json_schema_extra=PERSONAL),
    ]

    model_config = ConfigDict(
        json_schema_extra={  # the rule below, for the documents: exactly one of the two, not null
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("postcode_district", "referral_id")
            ]
        }
    )

    @model_validator(mode="after")
    def _one_target(self) -> ConflictDeclaration:
        if (self.postcode_district is None) == (self.referral_id is None):
            raise ValueError("name exactly one of postcode_district or referral_id")
        return self


class AvailabilityUpdate(Contract):
    availability: list[AvailabilitySlot]


class DecisionRequest(Contract):
    outcome: Literal["accept", "reject"]
    rejected_volunteer_ids: list[VolunteerId] = Field(
        default=[], description="On reject: only these are set aside for the referral; empty: all of them"
    )
    note: Note | None = None


class DecisionAccepted(Contract):
    decision_id: uuid.UUID
    proposal_id: uuid.UUID
    referral_id: uuid.UUID
    outcome: Literal["accept", "reject"]
