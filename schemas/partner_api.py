"""Partner API models: the referral submission agencies send, and what the API answers.

Fields marked ``x-personal-data`` in the JSON Schema stay inside the referrals service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import (
    NOT_BLANK,
    PERSONAL,
    WHITE_SPACE,
    Contract,
    DistinctPostcodeDistricts,
    Gender,
    LocalAuthority,
    Outcome,
    PostcodeDistrict,
    Reason,
    ReferralStatus,
    RiskLevel,
)
from schemas.events.circles import (
    CircleId,
    CircleOutcome,
    CircleStatus,
    ConcernLevel,
    ConcernState,
    ConcernSummary,
    EndReason,
)

AgencyReference = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$"),
    Field(description="The agency's own reference for this referral, unique within the agency"),
]
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK), Field(json_schema_extra=PERSONAL)
]
PncNumber = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}/[0-9]{7}[A-Z]$"),
    Field(description="Police National Computer number, YYYY/NNNNNNNL", json_schema_extra=PERSONAL),
]
Email = Annotated[
    str,
    StringConstraints(
        pattern=rf"^[^@{WHITE_SPACE}]{{1,64}}@[^@{WHITE_SPACE}]+\.[^@{WHITE_SPACE}]{{2,}}$", max_length=254
    ),
    Field(json_schema_extra=PERSONAL),
]
Phone = Annotated[
    str,
    # 6 to 20 of these characters, not starting or ending with a space (surrounding spaces are stripped)
    StringConstraints(pattern=r"^[0-9+()-][0-9 +()-]{4,18}[0-9+()-]$"),
    Field(json_schema_extra=PERSONAL),
]
MappaNumber = Literal[1, 2, 3]


class Referrer(Contract):
    name: PersonName
    role: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK)]
    email: Email
    phone: Phone | None = None


class CoreMember(Contract):
    given_name: PersonName
    family_name: PersonName
    date_of_birth: Annotated[date, Field(json_schema_extra=PERSONAL)]
    gender: Gender
    pnc_number: PncNumber | None = None
    local_authority: LocalAuthority = Field(description="Where he lives, or is to be released to")
    postcode_district: PostcodeDistrict


class Offence(Contract):
    sexual_offence: bool
    registered_sex_offender: bool
    mappa_category: MappaNumber | None = None
    mappa_level: MappaNumber | None = None


class Risk(Contract):
    level: RiskLevel
    tool: Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=NOT_BLANK)] | None = None


class Custody(Contract):
    in_custody: bool
    establishment: Annotated[str, StringConstraints(max_length=100)] | None = None
    expected_release_date: date | None = None


class Consent(Contract):
    given: bool
    date: dt.date | None = None


class Needs(Contract):
    learning_disability: bool = False
    mental_health: bool = False
    # 2 to 40 characters, a letter first, not ending with a space (surrounding spaces are stripped)
    interpreter_language: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z -]{0,38}[A-Za-z-]$")] | None
    ) = None


class ReferralSubmission(Contract):
    """The body of ``POST /v1/referrals`` and ``PUT /v1/referrals/{id}``, and of inbound Kafka records."""

    agency_reference: AgencyReference
    referrer: Referrer
    core_member: CoreMember
    offence: Offence
    risk: Risk
    custody: Custody
    consent: Consent
    needs: Needs = Needs()
    exclusion_zones: Annotated[DistinctPostcodeDistricts, Field(max_length=20)] = []
    notes: Annotated[str, StringConstraints(max_length=2000), Field(json_schema_extra=PERSONAL)] | None = None

    def fingerprint(self) -> str:
        """Stable hash of the normalised body: an identical resubmission has the same fingerprint."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class Withdrawal(Contract):
    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK),
        Field(json_schema_extra=PERSONAL),
    ]


class Links(Contract):
    self: str
    history: str


class Decision(Contract):
    outcome: Outcome
    reasons: list[Reason]
    policy_version: str
    decided_at: AwareDatetime
    reassess_on: date | None = Field(
        default=None, description="For a deferred referral: the day it will be assessed again"
    )


class ReferralAccepted(Contract):
    referral_id: uuid.UUID
    status: ReferralStatus
    links: Links


class MappaPanelView(Contract):
    """A MAPPA panel about this referral the scheme was asked to attend, and whether it attended."""

    panel_id: uuid.UUID
    level: Literal[2, 3]
    held_on: date
    attended: bool


class CircleView(Contract):
    """The referral's circle once formed: ids, dates, counts and states (never minutes or summaries)."""

    circle_id: CircleId
    status: CircleStatus
    formed_on: date
    meetings_held: int = Field(ge=0)
    last_meeting_on: date | None
    next_review_due: date | None = Field(description="While the circle is active")
    open_concerns: int = Field(ge=0, description="Concerns not yet acknowledged by the agency")
    outcome: CircleOutcome | None = Field(description="Once ended: completed or ended_early")
    end_reason: EndReason | None = Field(default=None, description="Why a circle ended early")
    ended_on: date | None = None


class ReferralView(Contract):
    referral_id: uuid.UUID
    agency_reference: AgencyReference
    status: ReferralStatus
    version: int
    decision: Decision | None
    submitted_at: AwareDatetime
    updated_at: AwareDatetime
    erased_at: AwareDatetime | None = Field(
        default=None, description="When the referral's personal data was erased (on request, or retention)"
    )
    mappa_panels: list[MappaPanelView] = Field(
        default=[],
        description="The MAPPA Level 2 and 3 panels about this referral the scheme was asked to attend, "
        "oldest first, and whether it attended each",
    )
    circle: CircleView | None = Field(default=None, description="Once a circle is formed")
    links: Links


class HistoryEntry(Contract):
    event_id: uuid.UUID
    type: str
    time: datetime
    summary: str


class ReferralHistory(Contract):
    referral_id: uuid.UUID
    events: list[HistoryEntry]


class ReferralList(Contract):
    referrals: list[ReferralView]


class ConcernLinks(Contract):
    self: str
    acknowledgement: str
    referral: str


class ConcernView(Contract):
    """A concern raised in a circle, for the referring agency (its summary only in ``GET`` of one)."""

    concern_id: uuid.UUID
    referral_id: uuid.UUID
    circle_id: CircleId
    level: ConcernLevel
    raised_at: AwareDatetime
    state: ConcernState
    acknowledged_at: AwareDatetime | None
    escalated_at: AwareDatetime | None = Field(
        default=None, description="An urgent concern not acknowledged in time is escalated"
    )
    links: ConcernLinks


class ConcernDetail(ConcernView):
    summary: ConcernSummary | None = Field(
        description="What was heard (to the referring agency only); null once the referral's data is erased "
        "or while it is still on its way"
    )


class ConcernList(Contract):
    concerns: list[ConcernView]


class Acknowledgement(Contract):
    note: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=1000, pattern=NOT_BLANK),
            Field(json_schema_extra=PERSONAL, description="The agency's note (kept sealed)"),
        ]
        | None
    ) = None


class FieldError(Contract):
    loc: list[str | int]
    msg: str
    type: str


class Problem(Contract):
    """RFC 9457 problem details, with every field error of a 422 in ``errors``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    links: dict[str, str] | None = None
