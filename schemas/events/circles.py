"""Commands and facts of the circles service: a circle's life after it is formed.

Commands (``circles.circle.record-meeting.v1`` ...) are written by the ``circles circle`` command, the pages
and the partner API to the service's private command topic, keyed by referral id. They may carry minutes and
concern summaries: personal data, sealed under the referral's own data key (subject ``referral:<id>``), so
that erasing the referral (which destroys that key) makes them unreadable everywhere.

Facts (``circles.circle.meeting-recorded.v1`` ...) cross service boundaries and carry ids, dates and states
only: never the minutes or a concern's summary.

Every id a command makes (``meeting_id``, ``concern_id``, ``review_id``, ``command_id``) is made where the
command is made, so a command written twice (a retry, a replay) is applied once.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from schemas.common import NOT_BLANK, PERSONAL, AgencyId, LocalAuthority, VolunteerId
from schemas.envelope import Event

CIRCLE_ID_PATTERN = r"^circle-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CircleId = Annotated[
    str,
    StringConstraints(pattern=CIRCLE_ID_PATTERN),
    Field(
        description='"circle-" and the referral id: one circle per referral',
        examples=["circle-0b9f5a52-5c55-4a8e-9d1e-2f3c4d5e6f70"],
    ),
]


def circle_id_of(referral_id: uuid.UUID) -> str:
    """The circle of a referral (one circle per referral)."""
    return f"circle-{referral_id}"


def referral_id_of(circle_id: str) -> uuid.UUID:
    """The referral of a circle id; ``ValueError`` if it is not one."""
    if not circle_id.startswith("circle-"):
        raise ValueError(f"not a circle id: {circle_id!r}")
    return uuid.UUID(circle_id.removeprefix("circle-"))


Minutes = Annotated[
    str,
    StringConstraints(min_length=1, max_length=20_000, pattern=NOT_BLANK),
    Field(description="The meeting's minutes (personal data: sealed)", json_schema_extra=PERSONAL),
]
ConcernSummary = Annotated[
    str,
    StringConstraints(min_length=1, max_length=5_000, pattern=NOT_BLANK),
    Field(description="What was heard (personal data: sealed)", json_schema_extra=PERSONAL),
]
Actor = Annotated[
    str,
    StringConstraints(pattern=r"^(cli|coordinator|volunteer|agency|system):[^\x00-\x1f]{1,100}$"),
    Field(description="Who asked: cli:<user>, coordinator:<id>, volunteer:<id>, agency:<id>"),
]


class CoreMemberAttendance(StrEnum):
    ATTENDED = "attended"
    LATE = "late"
    ABSENT = "absent"


class ConcernLevel(StrEnum):
    URGENT = "urgent"
    ROUTINE = "routine"


class ConcernState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class CircleStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class CircleOutcome(StrEnum):
    COMPLETED = "completed"
    ENDED_EARLY = "ended_early"


class EndReason(StrEnum):
    """Why a circle ended early (the contract's reason codes)."""

    CORE_MEMBER_WITHDREW = "core_member_withdrew"
    RECALLED_TO_CUSTODY = "recalled_to_custody"
    MOVED_AWAY = "moved_away"
    RISK_ESCALATED = "risk_escalated"
    VOLUNTEERS_UNAVAILABLE = "volunteers_unavailable"
    OTHER = "other"


# -- commands (private: circles.circles.commands.v1) ------------------------------------------------------


class CircleCommand(Event):
    """A request to change a circle; applied once per ``command_id``."""

    command_id: uuid.UUID
    referral_id: uuid.UUID
    requested_by: Actor
    requested_at: AwareDatetime

    @property
    def circle_id(self) -> str:
        return circle_id_of(self.referral_id)

    def partition_key(self) -> str:
        return str(self.referral_id)

    def data_subject(self) -> str:
        """Minutes and summaries are about the core member: sealed with the referral's own data key."""
        return f"referral:{self.referral_id}"


class RecordMeeting(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.record-meeting.v1"
    meeting_id: uuid.UUID
    held_on: date
    core_member_attendance: CoreMemberAttendance
    volunteer_ids: list[VolunteerId] = Field(default=[], description="The volunteers who attended")
    minutes: Minutes | None = None


class SubmitMinutes(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.submit-minutes.v1"
    meeting_id: uuid.UUID
    minutes: Minutes


class RaiseConcern(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.raise-concern.v1"
    concern_id: uuid.UUID
    level: ConcernLevel
    summary: ConcernSummary
    raised_by: VolunteerId | None = Field(default=None, description="The volunteer who heard it, if one did")


class AcknowledgeConcern(CircleCommand):
    """The referring agency acknowledged a concern (written by the referrals service's partner API)."""

    event_type: ClassVar[str] = "circles.circle.acknowledge-concern.v1"
    concern_id: uuid.UUID
    agency_id: AgencyId
    note: Annotated[str, StringConstraints(max_length=1000), Field(json_schema_extra=PERSONAL)] | None = None


class RecordReview(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.record-review.v1"
    review_id: uuid.UUID
    held_on: date


class ExtendCircle(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.extend.v1"
    months: int = Field(ge=1, le=24, description="Months added to the planned end")


class EndCircle(CircleCommand):
    event_type: ClassVar[str] = "circles.circle.end.v1"
    outcome: CircleOutcome
    reason: EndReason | None = Field(default=None, description="Required when the outcome is ended_early")
    ended_on: date

    @model_validator(mode="after")
    def _reason_when_early(self) -> EndCircle:
        if self.outcome is CircleOutcome.ENDED_EARLY and self.reason is None:
            raise ValueError("a circle ended early needs a reason")
        return self


CIRCLE_COMMANDS: tuple[type[CircleCommand], ...] = (
    RecordMeeting,
    SubmitMinutes,
    RaiseConcern,
    AcknowledgeConcern,
    RecordReview,
    ExtendCircle,
    EndCircle,
)


# -- facts (circles.circles.events.v1): ids, dates and states only ---------------------------------------


class CircleFact(Event):
    referral_id: uuid.UUID
    circle_id: CircleId
    agency_id: AgencyId

    def partition_key(self) -> str:
        return str(self.referral_id)


class CircleActivated(CircleFact):
    """A formed circle is active from its formation date."""

    event_type: ClassVar[str] = "circles.circle.activated.v1"
    formed_on: date
    volunteer_ids: list[VolunteerId]
    local_authority: LocalAuthority
    planned_end_on: date
    next_review_due: date
    activated_at: AwareDatetime


class MeetingRecorded(CircleFact):
    event_type: ClassVar[str] = "circles.circle.meeting-recorded.v1"
    meeting_id: uuid.UUID
    held_on: date
    core_member_attendance: CoreMemberAttendance
    volunteer_ids: list[VolunteerId]
    minutes_due_at: AwareDatetime
    minutes_received: bool = Field(description="The minutes came with the meeting")
    recorded_at: AwareDatetime


class MinutesSubmitted(CircleFact):
    event_type: ClassVar[str] = "circles.circle.minutes-submitted.v1"
    meeting_id: uuid.UUID
    submitted_at: AwareDatetime
    on_time: bool


class MinutesOverdue(CircleFact):
    """A meeting's minutes were not in by their due time (they are chased)."""

    event_type: ClassVar[str] = "circles.circle.minutes-overdue.v1"
    meeting_id: uuid.UUID
    held_on: date
    minutes_due_at: AwareDatetime
    noticed_at: AwareDatetime


class ConcernRaised(CircleFact):
    event_type: ClassVar[str] = "circles.circle.concern-raised.v1"
    concern_id: uuid.UUID
    level: ConcernLevel
    raised_at: AwareDatetime
    raised_by: VolunteerId | None = None
    escalation_due_at: AwareDatetime | None = Field(
        default=None, description="When an urgent concern is escalated if not acknowledged by then"
    )


class ConcernAcknowledged(CircleFact):
    event_type: ClassVar[str] = "circles.circle.concern-acknowledged.v1"
    concern_id: uuid.UUID
    level: ConcernLevel
    acknowledged_at: AwareDatetime
    acknowledged_by: AgencyId
    raised_at: AwareDatetime


class ConcernEscalated(CircleFact):
    """An urgent concern was not acknowledged within the escalation period."""

    event_type: ClassVar[str] = "circles.circle.concern-escalated.v1"
    concern_id: uuid.UUID
    level: ConcernLevel
    raised_at: AwareDatetime
    escalated_at: AwareDatetime


class ReviewRecorded(CircleFact):
    event_type: ClassVar[str] = "circles.circle.review-recorded.v1"
    review_id: uuid.UUID
    held_on: date
    next_review_due: date


class CircleExtended(CircleFact):
    event_type: ClassVar[str] = "circles.circle.extended.v1"
    months: int
    planned_end_on: date
    extended_at: AwareDatetime


class CircleEnded(CircleFact):
    """The circle ended; its volunteers are free again."""

    event_type: ClassVar[str] = "circles.circle.ended.v1"
    outcome: CircleOutcome
    reason: EndReason | None
    ended_on: date
    volunteer_ids: list[VolunteerId]
    ended_at: AwareDatetime


CIRCLE_FACTS: tuple[type[CircleFact], ...] = (
    CircleActivated,
    MeetingRecorded,
    MinutesSubmitted,
    MinutesOverdue,
    ConcernRaised,
    ConcernAcknowledged,
    ConcernEscalated,
    ReviewRecorded,
    CircleExtended,
    CircleEnded,
)
