"""Volunteer records, as events on a compacted topic keyed by volunteer id.

Each event carries the volunteer's whole record after the change (its type says what changed), so that
compaction, which keeps only the latest record per key, never loses a volunteer. The record holds the
volunteer's name: it stays with the volunteer records and the matching service, never in proposals.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import (
    PERSONAL,
    AvailabilitySlot,
    Contract,
    Gender,
    LocalAuthority,
    PostcodeDistrict,
    Skill,
    VolunteerId,
)
from schemas.envelope import Event


class Conflict(Contract):
    """A declared reason this volunteer must not sit in some circles: an area, or one referral."""

    postcode_district: PostcodeDistrict | None = None
    referral_id: uuid.UUID | None = None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), Field(json_schema_extra=PERSONAL)]
    declared_on: date

    @model_validator(mode="after")
    def _one_target(self) -> Conflict:
        if (self.postcode_district is None) == (self.referral_id is None):
            raise ValueError("a conflict names exactly one of postcode_district or referral_id")
        return self


class VolunteerRecord(Contract):
    volunteer_id: VolunteerId
    name: Annotated[str, StringConstraints(min_length=1, max_length=120), Field(json_schema_extra=PERSONAL)]
    gender: Gender
    local_authority: LocalAuthority
    postcode_district: PostcodeDistrict
    experienced: bool = Field(default=False, description="Has served in a circle before")
    skills: list[Skill] = []
    max_circles: int | None = Field(default=None, ge=1, le=10, description="None: the scheme's default")
    availability: list[AvailabilitySlot] = []
    dbs_checked_on: date | None = Field(default=None, description="Date of the enhanced DBS check")
    trained_on: date | None = Field(default=None, description="Date core training was completed")
    last_supervised_on: date | None = None
    conflicts: list[Conflict] = []
    withdrawn_on: date | None = None
    registered_on: date


class VolunteerEvent(Event):
    volunteer: VolunteerRecord

    def partition_key(self) -> str:
        return self.volunteer.volunteer_id

    def data_subject(self) -> str:
        return f"volunteer:{self.volunteer.volunteer_id}"


class VolunteerRegistered(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.registered.v1"


class VolunteerVetted(VolunteerEvent):
    """An enhanced DBS check was recorded (``volunteer.dbs_checked_on``)."""

    event_type: ClassVar[str] = "circles.volunteer.vetted.v1"


class VolunteerTrained(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.trained.v1"


class VolunteerSupervised(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.supervised.v1"


class VolunteerAvailabilityChanged(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.availability-changed.v1"


class VolunteerConflictDeclared(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.conflict-declared.v1"


class VolunteerWithdrawn(VolunteerEvent):
    event_type: ClassVar[str] = "circles.volunteer.withdrawn.v1"


VolunteerChange = Literal[
    "registered", "vetted", "trained", "supervised", "availability", "conflict", "withdrawn"
]


class ChangeVolunteer(Event):
    """A command from the coordinator (CLI or page): change one volunteer's record.

    The matching service applies commands one at a time per volunteer and publishes the whole record
    after each (``circles.volunteers.v1``), so two coordinators editing one volunteer lose nothing.
    """

    event_type: ClassVar[str] = "circles.volunteer.change.v1"
    volunteer_id: VolunteerId
    change: VolunteerChange
    registration: VolunteerRecord | None = Field(default=None, description="For 'registered': the new record")
    on: date | None = Field(default=None, description="For vetted, trained, supervised: the day it happened")
    availability: list[AvailabilitySlot] | None = None
    conflict: Conflict | None = None
    requested_by: str

    def partition_key(self) -> str:
        return self.volunteer_id

    def data_subject(self) -> str:
        return f"volunteer:{self.volunteer_id}"
