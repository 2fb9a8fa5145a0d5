"""Events and commands of the referrals service.

Commands (``circles.referral.submit.v1`` ...) travel on the service's private command topic and carry the
whole submission. Events (``circles.referral.submitted.v1`` ...) cross service boundaries and carry only
the minimised ``ReferralProfile``: no names, dates of birth, PNC numbers or referrer contact details.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import (
    PERSONAL,
    AgeBand,
    AgencyId,
    Contract,
    DistinctPostcodeDistricts,
    Gender,
    LocalAuthority,
    PostcodeDistrict,
    RiskLevel,
)
from schemas.envelope import Event
from schemas.partner_api import AgencyReference, Decision, MappaNumber, ReferralSubmission

ErasureReason = Literal["request", "retention"]
ErasureNote = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")]
"""A reference to the erasure request, kept in the referral's history (which outlives the erasure), so it
must name no one: ``DSR-2026-041``, not the requester."""


class NeedsProfile(Contract):
    learning_disability: bool
    mental_health: bool
    interpreter_language: str | None


class ReferralProfile(Contract):
    """What other services may know about a core member: enough to match and route, nothing that names him."""

    local_authority: LocalAuthority
    postcode_district: PostcodeDistrict
    gender: Gender
    age_band: AgeBand
    risk_level: RiskLevel
    mappa_category: MappaNumber | None
    mappa_level: MappaNumber | None
    in_custody: bool
    expected_release_date: date | None
    needs: NeedsProfile
    exclusion_zones: DistinctPostcodeDistricts


class _ReferralEvent(Event):
    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: AgencyReference

    def partition_key(self) -> str:
        return str(self.referral_id)


class ReferralSubmitted(_ReferralEvent):
    """A version of a referral was accepted (version 1 on submission, 2+ when the agency amends it)."""

    event_type: ClassVar[str] = "circles.referral.submitted.v1"
    version: int = Field(ge=1)
    submitted_at: AwareDatetime
    profile: ReferralProfile
    detail_url: str = Field(description="Where the owning service answers for this referral")


class ReferralAssessed(_ReferralEvent):
    """The eligibility policy decided on a version of a referral."""

    event_type: ClassVar[str] = "circles.referral.assessed.v1"
    version: int = Field(ge=1)
    decision: Decision
    profile: ReferralProfile


class ReferralWithdrawn(_ReferralEvent):
    """The referring agency withdrew the referral (its reason stays with the referrals service)."""

    event_type: ClassVar[str] = "circles.referral.withdrawn.v1"
    version: int = Field(ge=1)
    withdrawn_at: AwareDatetime


class ReferralErased(_ReferralEvent):
    """The referral's personal data was destroyed (its data keys): on request, or under the retention policy.

    What survives is what this event and the others carry: ids, dates, decisions and outcomes."""

    event_type: ClassVar[str] = "circles.referral.erased.v1"
    erased_at: AwareDatetime
    reason: ErasureReason
    requested_by: str = Field(
        description="A role (data-protection, retention-policy), never a person's name: this topic is shared"
    )


class _ReferralCommand(Event):
    referral_id: uuid.UUID

    def partition_key(self) -> str:
        return str(self.referral_id)

    def data_subject(self) -> str:
        return f"referral:{self.referral_id}"


Channel = Annotated[str, StringConstraints(pattern=r"^(http|kafka)$")]


class SubmitReferral(_ReferralCommand):
    """An agency submitted (or, with ``amend``, replaced) a referral. Private: holds personal data."""

    event_type: ClassVar[str] = "circles.referral.submit.v1"
    agency_id: AgencyId
    submission: ReferralSubmission
    fingerprint: Annotated[str, Field(json_schema_extra=PERSONAL)]
    amend: bool = False
    received_at: AwareDatetime
    channel: Channel = "http"


class WithdrawReferral(_ReferralCommand):
    event_type: ClassVar[str] = "circles.referral.withdraw.v1"
    agency_id: AgencyId
    reason: Annotated[str, StringConstraints(max_length=500), Field(json_schema_extra=PERSONAL)]
    received_at: AwareDatetime


class EraseReferral(_ReferralCommand):
    """Destroy the referral's personal data (``circles erase referral``, ``circles retention apply``)."""

    event_type: ClassVar[str] = "circles.referral.erase.v1"
    reason: ErasureReason
    requested_by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    requested_at: AwareDatetime
    note: ErasureNote | None = Field(
        default=None, description="Why, as a reference (e.g. the request's number): kept in the history"
    )


class ReassessReferral(_ReferralCommand):
    """Time passed: assess a deferred referral again as of ``as_of``."""

    event_type: ClassVar[str] = "circles.referral.reassess.v1"
    as_of: date


AccessAction = Literal[
    "submit",
    "amend",
    "withdraw",
    "get",
    "history",
    "list",
    "erase",
    "concerns",
    "concern",
    "acknowledge_concern",
]


class ReferralAccessed(Event):
    """Someone read or changed referrals: who, which, when and what they were answered (the access log).

    ``actor`` is ``agency:<agency_id>`` for the partner API and ``cli:<user>`` for the command line. No
    personal data of core members: ids and codes only. A request touching many referrals (a list) is
    recorded in several records of at most ``MAX_IDS`` ids, sharing the request's correlation id."""

    event_type: ClassVar[str] = "circles.referral.accessed.v1"
    MAX_IDS: ClassVar[int] = 1000
    actor: Annotated[str, StringConstraints(pattern=r"^(agency|cli):[^\x00-\x1f]{1,100}$")]
    action: AccessAction
    referral_ids: list[uuid.UUID] = Field(max_length=MAX_IDS)
    status: int | None = Field(
        default=None, ge=100, le=599, description="The HTTP status answered (none for the command line)"
    )
    accessed_at: AwareDatetime

    def partition_key(self) -> str:
        return self.actor


class InboundSubmission(ReferralSubmission, Event):
    """A submission an agency system produced to the inbound topic: the same body as ``POST /v1/referrals``.

    The agency is named by the record's ``ce_source`` header, ``/agencies/<agency_id>``; who may write
    the topic is a broker ACL matter.
    """

    event_type: ClassVar[str] = "circles.referral.submission.v1"

    def partition_key(self) -> str:
        return self.agency_reference
