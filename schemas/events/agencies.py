"""The partner agency registry, as snapshot events on a compacted topic keyed by agency id."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import AgencyId, Contract, LocalAuthority
from schemas.envelope import Event


class AgencyKind(StrEnum):
    MAPPA = "mappa"
    PRISON = "prison"
    PROBATION = "probation"
    POLICE = "police"
    SAFEGUARDING_BOARD = "safeguarding-board"
    OTHER = "other"


class ApiKeyHash(Contract):
    """Only a salted SHA-256 of the key is kept: keys are 256-bit random, so a slow hash adds nothing."""

    key_id: str
    salt: str
    sha256: str
    created_at: AwareDatetime


class AgencyRecord(Contract):
    agency_id: AgencyId
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    kind: AgencyKind = AgencyKind.OTHER
    local_authorities: list[LocalAuthority] = Field(
        default=[], description="Areas it covers: who forms the outer circle of a core member there"
    )
    contact_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = Field(
        default=None, description="An organisational mailbox for notifications"
    )
    webhook_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    webhook_secret: str | None = Field(default=None, description="HMAC key for webhook signatures")
    kafka_signing_key: str | None = Field(
        default=None,
        description=(
            "HMAC-SHA256 key the agency signs its Kafka submissions with (header circles-signature); "
            "without one its Kafka submissions are refused"
        ),
    )
    api_key: ApiKeyHash
    registered_at: AwareDatetime
    updated_at: AwareDatetime


class _AgencyEvent(Event):
    agency: AgencyRecord

    def partition_key(self) -> str:
        return self.agency.agency_id


class AgencyRegistered(_AgencyEvent):
    event_type: ClassVar[str] = "circles.agency.registered.v1"


class AgencyKeyRotated(_AgencyEvent):
    event_type: ClassVar[str] = "circles.agency.key-rotated.v1"
