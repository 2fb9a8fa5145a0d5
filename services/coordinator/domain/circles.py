"""The coordinator's view of each circle after formation, folded from the circles service's facts
(``circles.circles.events.v1``): meetings and their minutes status, reviews, concerns, the ending.

Ids, dates and states only, as the facts carry them: minutes and concern summaries never reach this view.
Plain functions over pydantic models: ``apply`` folds one fact in; ``attention`` orders circles for the
page (escalated concerns first, then open urgent ones, overdue minutes, reviews due); ``upcoming`` says
when a circle's next meeting is expected (weekly after the last one, a setting).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime

from schemas.common import Contract
from schemas.events.circles import (
    CircleActivated,
    CircleEnded,
    CircleExtended,
    CircleFact,
    CircleOutcome,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    CoreMemberAttendance,
    EndReason,
    MeetingRecorded,
    MinutesOverdue,
    MinutesSubmitted,
    ReviewRecorded,
)

MinutesStatus = Literal["received", "on_time", "late", "due", "overdue"]


class MeetingView(Contract):
    meeting_id: uuid.UUID
    held_on: date
    core_member_attendance: CoreMemberAttendance
    volunteer_ids: list[str]
    minutes_due_at: AwareDatetime
    minutes_received: bool = False
    minutes_late: bool = False
    minutes_overdue: bool = False

    def minutes_status(self, now: datetime) -> MinutesStatus:
        if self.minutes_received:
            return "late" if self.minutes_late else "received"
        return "overdue" if self.minutes_overdue or now > self.minutes_due_at else "due"


class ReviewView(Contract):
    review_id: uuid.UUID
    held_on: date


class ConcernView(Contract):
    concern_id: uuid.UUID
    level: ConcernLevel
    raised_at: AwareDatetime
    raised_by: str | None = None
    escalation_due_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str | None = None
    escalated_at: AwareDatetime | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None and self.open


class CircleView(Contract):
    circle_id: str
    referral_id: uuid.UUID
    agency_id: str
    status: Literal["active", "ended"] = "active"
    formed_on: date
    planned_end_on: date
    next_review_due: date
    volunteer_ids: list[str]
    meetings: list[MeetingView] = []
    reviews: list[ReviewView] = []
    concerns: list[ConcernView] = []
    outcome: CircleOutcome | None = None
    reason: EndReason | None = None
    ended_on: date | None = None

    def meeting(self, meeting_id: uuid.UUID) -> MeetingView | None:
        return next((m for m in self.meetings if m.meeting_id == meeting_id), None)

    def open_concerns(self) -> list[ConcernView]:
        return [c for c in self.concerns if c.open]

    def escalated_concerns(self) -> list[ConcernView]:
        return [c for c in self.concerns if c.escalated]

    def minutes_overdue(self, now: datetime) -> int:
        return sum(1 for m in self.meetings if m.minutes_status(now) == "overdue")

    def review_due(self, today: date) -> bool:
        return self.status == "active" and self.next_review_due <= today

    def last_meeting_on(self) -> date | None:
        return max((m.held_on for m in self.meetings), default=None)


def _with_meeting(view: CircleView, meeting: MeetingView) -> CircleView:
    others = [m for m in view.meetings if m.meeting_id != meeting.meeting_id]
    return view.model_copy(update={"meetings": sorted([*others, meeting], key=lambda m: m.held_on)})


def _with_concern(view: CircleView, concern: ConcernView) -> CircleView:
    others = [c for c in view.concerns if c.concern_id != concern.concern_id]
    return view.model_copy(update={"concerns": sorted([*others, concern], key=lambda c: c.raised_at)})


def apply(current: CircleView | None, fact: CircleFact) -> CircleView | None:
    """The view after ``fact``; facts about a circle this view has not seen activated are kept only once it
    is (the facts of one referral arrive in order, on one partition). Replaying a fact changes nothing."""
    if isinstance(fact, CircleActivated):
        if current is not None:
            return current
        return CircleView(
            circle_id=fact.circle_id,
            referral_id=fact.referral_id,
            agency_id=fact.agency_id,
            formed_on=fact.formed_on,
            planned_end_on=fact.planned_end_on,
            next_review_due=fact.next_review_due,
            volunteer_ids=list(fact.volunteer_ids),
        )
    if current is None:
        return None
    return _apply_to(current, fact)


def _apply_to(view: CircleView, fact: CircleFact) -> CircleView:
    if isinstance(fact, MeetingRecorded):
        meeting = MeetingView(
            meeting_id=fact.meeting_id,
            held_on=fact.held_on,
            core_member_attendance=fact.core_member_attendance,
            volunteer_ids=list(fact.volunteer_ids),
            minutes_due_at=fact.minutes_due_at,
            minutes_received=fact.minutes_received,
        )
        known = view.meeting(fact.meeting_id)
        return view if known is not None else _with_meeting(view, meeting)
    if isinstance(fact, MinutesSubmitted | MinutesOverdue):
        known = view.meeting(fact.meeting_id)
        if known is None:
            return view
        if isinstance(fact, MinutesSubmitted):
            changed = known.model_copy(update={"minutes_received": True, "minutes_late": not fact.on_time})
        else:
            changed = known.model_copy(update={"minutes_overdue": True})
        return _with_meeting(view, changed)
    if isinstance(fact, ConcernRaised):
        if any(c.concern_id == fact.concern_id for c in view.concerns):
            return view
        return _with_concern(
            view,
            ConcernView(
                concern_id=fact.concern_id,
                level=fact.level,
                raised_at=fact.raised_at,
                raised_by=fact.raised_by,
                escalation_due_at=fact.escalation_due_at,
            ),
        )
    if isinstance(fact, ConcernAcknowledged | ConcernEscalated):
        concern = next((c for c in view.concerns if c.concern_id == fact.concern_id), None)
        if concern is None:
            return view
        if isinstance(fact, ConcernAcknowledged):
            update = {"acknowledged_at": fact.acknowledged_at, "acknowledged_by": fact.acknowledged_by}
        else:
            update = {"escalated_at": fact.escalated_at}
        return _with_concern(view, concern.model_copy(update=update))
    if isinstance(fact, ReviewRecorded):
        if any(r.review_id == fact.review_id for r in view.reviews):
            return view
        reviews = sorted(
            [*view.reviews, ReviewView(review_id=fact.review_id, held_on=fact.held_on)], key=_day
        )
        return view.model_copy(update={"reviews": reviews, "next_review_due": fact.next_review_due})
    if isinstance(fact, CircleExtended):
        return view.model_copy(update={"planned_end_on": fact.planned_end_on})
    if isinstance(fact, CircleEnded):
        return view.model_copy(
            update={
                "status": "ended",
                "outcome": fact.outcome,
                "reason": fact.reason,
                "ended_on": fact.ended_on,
            }
        )
    return view


def _day(review: ReviewView) -> date:
    return review.held_on


def attention(view: CircleView, now: datetime, today: date) -> tuple[int, int, int, int, date]:
    """Sort key: active circles with escalated concerns first, then open urgent concerns, overdue minutes,
    reviews due, then by formation date; ended circles after every active one."""
    return (
        0 if view.status == "active" else 1,
        -len(view.escalated_concerns()),
        -sum(1 for c in view.open_concerns() if c.level is ConcernLevel.URGENT),
        -(view.minutes_overdue(now) + (1 if view.review_due(today) else 0)),
        view.formed_on,
    )


def in_order(views: Iterable[CircleView], now: datetime, today: date) -> list[CircleView]:
    return sorted(views, key=lambda view: attention(view, now, today))


def of_volunteer(views: Iterable[CircleView], volunteer_id: str) -> list[CircleView]:
    """A volunteer's own circles (those the circle was formed with), active first."""
    return sorted(
        (v for v in views if volunteer_id in v.volunteer_ids),
        key=lambda v: (v.status != "active", v.formed_on),
    )


def next_meeting_on(view: CircleView, today: date, every_days: int) -> date | None:
    """When an active circle's next meeting is expected: ``every_days`` after the last one (or after the
    formation), and never before today. None for an ended circle."""
    if view.status != "active":
        return None
    expected = (view.last_meeting_on() or view.formed_on) + timedelta(days=every_days)
    return max(expected, today)
