"""A circle after formation: its state, and the rules that change it.

Plain functions over pydantic models: each takes the current ``Circle`` (or none), the input and "now",
and returns a ``Change``: the circle after it and the facts to publish, or raises ``CircleRefused`` with a
reason safe to show (ids, dates and codes only: never the minutes or a summary).

Time rules (every period is a ``Periods`` value, from the service's settings):

* a meeting's minutes are due ``minutes_due_hours`` (48) after the start of the meeting's day in Europe/London
  (the day is what is recorded, not the hour); minutes not in by then are overdue (``MinutesOverdue``, once);
* an urgent concern not acknowledged ``concern_escalation_hours`` (4) after it was raised is escalated
  (``ConcernEscalated``, once); a routine one never escalates; both stay open until acknowledged;
* a review is due ``review_every_months`` (3) after formation, then after the last review;
* a circle's planned course is ``planned_months`` (12) from formation, extendable.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.common import PERSONAL, AgencyId, LocalAuthority, VolunteerId
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleCommand,
    CircleEnded,
    CircleExtended,
    CircleFact,
    CircleOutcome,
    CircleStatus,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    ConcernState,
    CoreMemberAttendance,
    EndCircle,
    EndReason,
    ExtendCircle,
    MeetingRecorded,
    MinutesOverdue,
    MinutesSubmitted,
    RaiseConcern,
    RecordMeeting,
    RecordReview,
    ReviewRecorded,
    SubmitMinutes,
    circle_id_of,
)
from schemas.events.matching import CircleFormed
from services.runtime.ids import derive_id

SCHEME_TIMEZONE = ZoneInfo("Europe/London")
APPLIED_KEPT = 64
"""Command ids remembered per circle, to apply a command written twice once."""

Sealed = Annotated[str, Field(json_schema_extra=PERSONAL)]
"""Personal text in the state (minutes, summaries): sealed with the referral's key in the changelog and
on disk."""


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meeting(_State):
    meeting_id: uuid.UUID
    held_on: date
    core_member_attendance: CoreMemberAttendance
    volunteer_ids: list[VolunteerId]
    recorded_at: AwareDatetime
    minutes_due_at: AwareDatetime
    minutes: Sealed | None = None
    minutes_submitted_at: AwareDatetime | None = None
    minutes_on_time: bool | None = None
    overdue_at: AwareDatetime | None = Field(default=None, description="When it was found overdue")

    @property
    def minutes_in(self) -> bool:
        return self.minutes_submitted_at is not None

    def minutes_state(self, now: datetime) -> str:
        """``on_time``, ``late``, ``overdue`` (still missing after the due time) or ``due``."""
        if self.minutes_submitted_at is not None:
            return "on_time" if self.minutes_on_time else "late"
        return "overdue" if now > self.minutes_due_at or self.overdue_at is not None else "due"


class Concern(_State):
    concern_id: uuid.UUID
    level: ConcernLevel
    summary: Sealed | None = None
    raised_at: AwareDatetime
    raised_by: VolunteerId | None = None
    escalation_due_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: AgencyId | None = None
    escalated_at: AwareDatetime | None = None

    @property
    def state(self) -> ConcernState:
        return ConcernState.OPEN if self.acknowledged_at is None else ConcernState.ACKNOWLEDGED


class Review(_State):
    review_id: uuid.UUID
    held_on: date
    recorded_at: AwareDatetime
    next_review_due: date


class Circle(_State):
    """One circle (one per referral), as the circles worker keeps it (table key: the referral id)."""

    circle_id: str
    referral_id: uuid.UUID
    agency_id: AgencyId
    local_authority: LocalAuthority
    volunteer_ids: list[VolunteerId]
    formed_on: date
    formed_at: AwareDatetime
    planned_end_on: date
    next_review_due: date
    status: CircleStatus = CircleStatus.ACTIVE
    meetings: list[Meeting] = []
    concerns: list[Concern] = []
    reviews: list[Review] = []
    extended_months: int = 0
    outcome: CircleOutcome | None = None
    end_reason: EndReason | None = None
    ended_on: date | None = None
    ended_at: AwareDatetime | None = None
    erased_at: AwareDatetime | None = Field(
        default=None, description="The referral was erased: minutes and summaries are gone, nothing applies"
    )
    applied: list[uuid.UUID] = Field(default=[], description="Recently applied command ids")
    correlation_id: str | None = Field(default=None, description="The referral's, for the facts of timers")
    next_deadline: AwareDatetime | None = Field(
        default=None, description="The earliest minutes due or escalation pending (the timer's index)"
    )

    def meeting(self, meeting_id: uuid.UUID) -> Meeting | None:
        return next((m for m in self.meetings if m.meeting_id == meeting_id), None)

    def concern(self, concern_id: uuid.UUID) -> Concern | None:
        return next((c for c in self.concerns if c.concern_id == concern_id), None)


class DeadlineView(BaseModel):
    """The index's view of a stored circle: its unsealed deadline only (no opening needed)."""

    model_config = ConfigDict(extra="ignore")
    next_deadline: AwareDatetime | None = None


@dataclass(frozen=True)
class Periods:
    minutes_due_hours: float = 48.0
    concern_escalation_hours: float = 4.0
    review_every_months: int = 3
    planned_months: int = 12


@dataclass
class Change:
    """The circle after an input (None: unchanged) and the facts to publish, each with its derived id."""

    circle: Circle | None
    facts: list[tuple[uuid.UUID, CircleFact]] = field(default_factory=list)


class CircleRefused(Exception):
    """The command cannot apply; the message is safe to log and show (ids, dates, codes)."""


class UnknownCircle(CircleRefused):
    pass


# -- time --------------------------------------------------------------------------------------------------


def scheme_day(moment: datetime) -> date:
    return moment.astimezone(SCHEME_TIMEZONE).date()


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SCHEME_TIMEZONE)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day where it is shorter: 31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def minutes_due_at(held_on: date, periods: Periods) -> datetime:
    return start_of(held_on) + timedelta(hours=periods.minutes_due_hours)


def next_deadline(circle: Circle) -> datetime | None:
    """The earliest moment something may fall due: missing minutes not yet overdue, urgent concerns open
    and not yet escalated. None: nothing to watch."""
    if circle.erased_at is not None:
        return None
    moments = [m.minutes_due_at for m in circle.meetings if not m.minutes_in and m.overdue_at is None]
    moments += [
        c.escalation_due_at
        for c in circle.concerns
        if c.escalation_due_at is not None and c.acknowledged_at is None and c.escalated_at is None
    ]
    return min(moments) if moments else None


def _with_deadline(circle: Circle) -> Circle:
    return circle.model_copy(update={"next_deadline": next_deadline(circle)})


# -- formation ---------------------------------------------------------------------------------------------


def activate(
    current: Circle | None,
    event: CircleFormed,
    cause_id: uuid.UUID,
    periods: Periods,
    correlation_id: str | None = None,
) -> Change:
    """A formed circle is active from its formation date; formed again (a replay): nothing changes."""
    if current is not None:
        return Change(None)
    formed_on = scheme_day(event.formed_at)
    circle = Circle(
        circle_id=circle_id_of(event.referral_id),
        referral_id=event.referral_id,
        agency_id=event.agency_id,
        local_authority=event.local_authority,
        volunteer_ids=list(event.volunteer_ids),
        formed_on=formed_on,
        formed_at=event.formed_at,
        planned_end_on=add_months(formed_on, periods.planned_months),
        next_review_due=add_months(formed_on, periods.review_every_months),
        correlation_id=correlation_id,
    )
    fact = CircleActivated(
        **_fact_base(circle),
        formed_on=formed_on,
        volunteer_ids=circle.volunteer_ids,
        local_authority=circle.local_authority,
        planned_end_on=circle.planned_end_on,
        next_review_due=circle.next_review_due,
        activated_at=event.formed_at,
    )
    return Change(circle, [(derive_id(cause_id, "activated"), fact)])


def _fact_base(circle: Circle) -> dict[str, object]:
    return {"referral_id": circle.referral_id, "circle_id": circle.circle_id, "agency_id": circle.agency_id}


# -- commands ----------------------------------------------------------------------------------------------


def apply_command(current: Circle | None, command: CircleCommand, now: datetime, periods: Periods) -> Change:
    """Apply one command. A command applied before (same ``command_id``) changes nothing."""
    if current is None:
        raise UnknownCircle(f"no circle {command.circle_id}")
    if command.command_id in current.applied:
        return Change(None)
    if current.erased_at is not None:
        raise CircleRefused(f"circle {current.circle_id} was erased with its referral")
    at = min(command.requested_at, now)  # when it was asked (a clock ahead of ours counts as now)
    change = _dispatch(current, command, at, now, periods)
    if change.circle is None:
        return change
    applied = [*current.applied, command.command_id][-APPLIED_KEPT:]
    circle = _with_deadline(change.circle.model_copy(update={"applied": applied}))
    return Change(
        circle, [(derive_id(command.command_id, fact.event_type), fact) for _, fact in change.facts]
    )


def _dispatch(
    circle: Circle, command: CircleCommand, at: datetime, now: datetime, periods: Periods
) -> Change:
    if isinstance(command, RecordMeeting):
        return record_meeting(circle, command, at, now, periods)
    if isinstance(command, SubmitMinutes):
        return submit_minutes(circle, command, at)
    if isinstance(command, RaiseConcern):
        return raise_concern(circle, command, at, periods)
    if isinstance(command, AcknowledgeConcern):
        return acknowledge_concern(circle, command, at)
    if isinstance(command, RecordReview):
        return record_review(circle, command, at, now, periods)
    if isinstance(command, ExtendCircle):
        return extend(circle, command, at)
    if isinstance(command, EndCircle):
        return end(circle, command, at, now)
    raise CircleRefused(f"{command.event_type} is not a circle command")


def _active(circle: Circle, doing: str) -> None:
    if circle.status is not CircleStatus.ACTIVE:
        raise CircleRefused(f"circle {circle.circle_id} has ended: cannot {doing}")


def _check_day(circle: Circle, day: date, now: datetime, what: str) -> None:
    if day < circle.formed_on:
        raise CircleRefused(
            f"{what} date {day.isoformat()} is before the circle was formed ({circle.formed_on.isoformat()})"
        )
    today = scheme_day(now)
    if day > today:
        raise CircleRefused(f"{what} date {day.isoformat()} is in the future (today is {today.isoformat()})")


def record_meeting(
    circle: Circle, command: RecordMeeting, at: datetime, now: datetime, periods: Periods
) -> Change:
    existing = circle.meeting(command.meeting_id)
    if existing is not None:
        return Change(None)  # the same meeting recorded again under another command: once is enough
    _active(circle, "record a meeting")
    _check_day(circle, command.held_on, now, "meeting")
    strangers = sorted(set(command.volunteer_ids) - set(circle.volunteer_ids))
    if strangers:
        raise CircleRefused(f"volunteers {', '.join(strangers)} are not in circle {circle.circle_id}")
    due = minutes_due_at(command.held_on, periods)
    meeting = Meeting(
        meeting_id=command.meeting_id,
        held_on=command.held_on,
        core_member_attendance=command.core_member_attendance,
        volunteer_ids=list(command.volunteer_ids),
        recorded_at=at,
        minutes_due_at=due,
    )
    facts: list[tuple[uuid.UUID, CircleFact]] = []
    recorded = MeetingRecorded(
        **_fact_base(circle),
        meeting_id=meeting.meeting_id,
        held_on=meeting.held_on,
        core_member_attendance=meeting.core_member_attendance,
        volunteer_ids=meeting.volunteer_ids,
        minutes_due_at=due,
        minutes_received=command.minutes is not None,
        recorded_at=at,
    )
    facts.append((command.meeting_id, recorded))
    if command.minutes is not None:
        on_time = at <= due
        meeting = meeting.model_copy(
            update={"minutes": command.minutes, "minutes_submitted_at": at, "minutes_on_time": on_time}
        )
        facts.append(
            (
                command.meeting_id,
                MinutesSubmitted(
                    **_fact_base(circle), meeting_id=meeting.meeting_id, submitted_at=at, on_time=on_time
                ),
            )
        )
    meetings = sorted([*circle.meetings, meeting], key=lambda m: (m.held_on, m.recorded_at))
    return Change(circle.model_copy(update={"meetings": meetings}), facts)


def submit_minutes(circle: Circle, command: SubmitMinutes, at: datetime) -> Change:
    meeting = circle.meeting(command.meeting_id)
    if meeting is None:
        raise CircleRefused(f"no meeting {command.meeting_id} in circle {circle.circle_id}")
    if meeting.minutes_in:
        raise CircleRefused(f"meeting {command.meeting_id} already has its minutes")
    on_time = at <= meeting.minutes_due_at
    updated = meeting.model_copy(
        update={"minutes": command.minutes, "minutes_submitted_at": at, "minutes_on_time": on_time}
    )
    fact = MinutesSubmitted(
        **_fact_base(circle), meeting_id=meeting.meeting_id, submitted_at=at, on_time=on_time
    )
    return Change(_replace_meeting(circle, updated), [(meeting.meeting_id, fact)])


def _replace_meeting(circle: Circle, meeting: Meeting) -> Circle:
    meetings = [meeting if m.meeting_id == meeting.meeting_id else m for m in circle.meetings]
    return circle.model_copy(update={"meetings": meetings})


def _replace_concern(circle: Circle, concern: Concern) -> Circle:
    concerns = [concern if c.concern_id == concern.concern_id else c for c in circle.concerns]
    return circle.model_copy(update={"concerns": concerns})


def raise_concern(circle: Circle, command: RaiseConcern, at: datetime, periods: Periods) -> Change:
    if circle.concern(command.concern_id) is not None:
        return Change(None)
    _active(circle, "raise a concern")
    if command.raised_by is not None and command.raised_by not in circle.volunteer_ids:
        raise CircleRefused(f"volunteer {command.raised_by} is not in circle {circle.circle_id}")
    escalation_due_at = (
        at + timedelta(hours=periods.concern_escalation_hours)
        if command.level is ConcernLevel.URGENT
        else None
    )
    concern = Concern(
        concern_id=command.concern_id,
        level=command.level,
        summary=command.summary,
        raised_at=at,
        raised_by=command.raised_by,
        escalation_due_at=escalation_due_at,
    )
    fact = ConcernRaised(
        **_fact_base(circle),
        concern_id=concern.concern_id,
        level=concern.level,
        raised_at=at,
        raised_by=concern.raised_by,
        escalation_due_at=escalation_due_at,
    )
    return Change(
        circle.model_copy(update={"concerns": [*circle.concerns, concern]}), [(concern.concern_id, fact)]
    )


def acknowledge_concern(circle: Circle, command: AcknowledgeConcern, at: datetime) -> Change:
    """The referring agency acknowledges (only it may); a second acknowledgement changes nothing."""
    concern = circle.concern(command.concern_id)
    if concern is None or command.agency_id != circle.agency_id:
        raise CircleRefused(f"no concern {command.concern_id} of agency {command.agency_id}")
    if concern.acknowledged_at is not None:
        return Change(None)
    updated = concern.model_copy(update={"acknowledged_at": at, "acknowledged_by": command.agency_id})
    fact = ConcernAcknowledged(
        **_fact_base(circle),
        concern_id=concern.concern_id,
        level=concern.level,
        acknowledged_at=at,
        acknowledged_by=command.agency_id,
        raised_at=concern.raised_at,
    )
    return Change(_replace_concern(circle, updated), [(concern.concern_id, fact)])


def record_review(
    circle: Circle, command: RecordReview, at: datetime, now: datetime, periods: Periods
) -> Change:
    if any(r.review_id == command.review_id for r in circle.reviews):
        return Change(None)
    _active(circle, "record a review")
    _check_day(circle, command.held_on, now, "review")
    latest = max((r.held_on for r in circle.reviews), default=None)
    if latest is not None and command.held_on < latest:
        raise CircleRefused(f"review date {command.held_on.isoformat()} is before the last review ({latest})")
    next_due = add_months(command.held_on, periods.review_every_months)
    review = Review(
        review_id=command.review_id, held_on=command.held_on, recorded_at=at, next_review_due=next_due
    )
    fact = ReviewRecorded(
        **_fact_base(circle), review_id=review.review_id, held_on=review.held_on, next_review_due=next_due
    )
    updated = circle.model_copy(update={"reviews": [*circle.reviews, review], "next_review_due": next_due})
    return Change(updated, [(review.review_id, fact)])


def extend(circle: Circle, command: ExtendCircle, at: datetime) -> Change:
    _active(circle, "extend it")
    planned = add_months(circle.planned_end_on, command.months)
    fact = CircleExtended(**_fact_base(circle), months=command.months, planned_end_on=planned, extended_at=at)
    updated = circle.model_copy(
        update={"planned_end_on": planned, "extended_months": circle.extended_months + command.months}
    )
    return Change(updated, [(command.command_id, fact)])


def end(circle: Circle, command: EndCircle, at: datetime, now: datetime) -> Change:
    _active(circle, "end it again")
    if command.outcome is CircleOutcome.ENDED_EARLY and command.reason is None:
        raise CircleRefused("a circle ended early needs a reason code")
    if command.outcome is CircleOutcome.COMPLETED and command.reason is not None:
        raise CircleRefused("a completed circle takes no reason code (ended_early does)")
    _check_day(circle, command.ended_on, now, "end")
    last_meeting = max((m.held_on for m in circle.meetings), default=None)
    if last_meeting is not None and command.ended_on < last_meeting:
        raise CircleRefused(
            f"end date {command.ended_on.isoformat()} is before the last meeting ({last_meeting.isoformat()})"
        )
    fact = CircleEnded(
        **_fact_base(circle),
        outcome=command.outcome,
        reason=command.reason,
        ended_on=command.ended_on,
        volunteer_ids=circle.volunteer_ids,
        ended_at=at,
    )
    updated = circle.model_copy(
        update={
            "status": CircleStatus.ENDED,
            "outcome": command.outcome,
            "end_reason": command.reason,
            "ended_on": command.ended_on,
            "ended_at": at,
        }
    )
    return Change(updated, [(command.command_id, fact)])


# -- deadlines ---------------------------------------------------------------------------------------------


def fall_due(circle: Circle, now: datetime) -> Change:
    """Minutes overdue and urgent concerns to escalate as of ``now``, each told once (derived ids)."""
    if circle.erased_at is not None:
        return Change(None)
    facts: list[tuple[uuid.UUID, CircleFact]] = []
    meetings: list[Meeting] = []
    for meeting in circle.meetings:
        if not meeting.minutes_in and meeting.overdue_at is None and now > meeting.minutes_due_at:
            meeting = meeting.model_copy(update={"overdue_at": now})
            fact = MinutesOverdue(
                **_fact_base(circle),
                meeting_id=meeting.meeting_id,
                held_on=meeting.held_on,
                minutes_due_at=meeting.minutes_due_at,
                noticed_at=now,
            )
            facts.append((derive_id(meeting.meeting_id, "minutes-overdue"), fact))
        meetings.append(meeting)
    concerns: list[Concern] = []
    for concern in circle.concerns:
        due = concern.escalation_due_at
        if due is not None and concern.acknowledged_at is None and concern.escalated_at is None and now > due:
            concern = concern.model_copy(update={"escalated_at": now})
            escalated = ConcernEscalated(
                **_fact_base(circle),
                concern_id=concern.concern_id,
                level=concern.level,
                raised_at=concern.raised_at,
                escalated_at=now,
            )
            facts.append((derive_id(concern.concern_id, "escalated"), escalated))
        concerns.append(concern)
    if not facts:
        return Change(None)
    return Change(
        _with_deadline(circle.model_copy(update={"meetings": meetings, "concerns": concerns})), facts
    )


# -- erasure -----------------------------------------------------------------------------------------------


def erase(circle: Circle | None, erased_at: datetime) -> Change:
    """The referral was erased: its minutes and summaries go (their key is destroyed already); ids, dates and
    states stay, as in every other service, and no command applies any more."""
    if circle is None or circle.erased_at is not None:
        return Change(None)
    meetings = [m.model_copy(update={"minutes": None}) for m in circle.meetings]
    concerns = [c.model_copy(update={"summary": None}) for c in circle.concerns]
    erased = circle.model_copy(
        update={"meetings": meetings, "concerns": concerns, "erased_at": erased_at, "next_deadline": None}
    )
    return Change(erased)


def without_personal(data: dict[str, Any]) -> Circle:
    """A stored circle (its JSON) read without opening: its minutes and summaries left out (for a circle
    whose referral's key is destroyed, they are noise)."""
    meetings = [{**m, "minutes": None} for m in data.get("meetings", [])]
    concerns = [{**c, "summary": None} for c in data.get("concerns", [])]
    return Circle.model_validate({**data, "meetings": meetings, "concerns": concerns})


# -- reading -----------------------------------------------------------------------------------------------


def summary(circle: Circle, now: datetime) -> dict[str, object]:
    """The ``circles circle list --json`` object (the contract's fields, plus a few the pages use)."""
    held = circle.meetings
    last = max((m.held_on for m in held), default=None)
    return {
        "circle_id": circle.circle_id,
        "referral_id": str(circle.referral_id),
        "agency_id": circle.agency_id,
        "status": circle.status.value,
        "formed_on": circle.formed_on.isoformat(),
        "planned_end_on": circle.planned_end_on.isoformat(),
        "volunteers": list(circle.volunteer_ids),
        "meetings_held": len(held),
        "last_meeting_on": last.isoformat() if last else None,
        "minutes_overdue": sum(1 for m in held if m.minutes_state(now) == "overdue"),
        "next_review_due": circle.next_review_due.isoformat()
        if circle.status is CircleStatus.ACTIVE
        else None,
        "review_overdue": circle.status is CircleStatus.ACTIVE and circle.next_review_due < scheme_day(now),
        "open_concerns": sum(1 for c in circle.concerns if c.state is ConcernState.OPEN),
        "escalated_concerns": sum(
            1 for c in circle.concerns if c.state is ConcernState.OPEN and c.escalated_at is not None
        ),
        "outcome": circle.outcome.value if circle.outcome else None,
        "end_reason": circle.end_reason.value if circle.end_reason else None,
        "ended_on": circle.ended_on.isoformat() if circle.ended_on else None,
    }


def detail(circle: Circle, now: datetime) -> dict[str, object]:
    """``circles circle show --json``: the summary, meetings, reviews and concerns (ids, dates, states)."""
    out = summary(circle, now)
    out["meetings"] = [
        {
            "meeting_id": str(m.meeting_id),
            "held_on": m.held_on.isoformat(),
            "core_member_attendance": m.core_member_attendance.value,
            "volunteers": list(m.volunteer_ids),
            "minutes": m.minutes_state(now),
            "minutes_due_at": m.minutes_due_at.isoformat(),
            "minutes_submitted_at": m.minutes_submitted_at.isoformat() if m.minutes_submitted_at else None,
        }
        for m in circle.meetings
    ]
    out["reviews"] = [
        {
            "review_id": str(r.review_id),
            "held_on": r.held_on.isoformat(),
            "next_review_due": r.next_review_due.isoformat(),
        }
        for r in circle.reviews
    ]
    out["concerns"] = [
        {
            "concern_id": str(c.concern_id),
            "level": c.level.value,
            "raised_at": c.raised_at.isoformat(),
            "raised_by": c.raised_by,
            "state": c.state.value,
            "escalated": c.escalated_at is not None,
            "escalated_at": c.escalated_at.isoformat() if c.escalated_at else None,
            "acknowledged_at": c.acknowledged_at.isoformat() if c.acknowledged_at else None,
        }
        for c in sorted(circle.concerns, key=lambda c: (c.escalated_at is None, c.raised_at))
    ]
    return out


def listing(circles: Sequence[Circle], now: datetime) -> list[dict[str, object]]:
    return [summary(circle, now) for circle in sorted(circles, key=lambda c: (c.formed_on, c.circle_id))]
