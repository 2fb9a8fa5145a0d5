"""The coordinator's view of circles, folded from the circles facts: meetings and minutes status, concerns
(escalated first), reviews, the ending; replays change nothing; a volunteer sees only their own circles."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.events.circles import (
    CircleActivated,
    CircleEnded,
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
    circle_id_of,
)
from services.coordinator.domain.circles import CircleView, apply, in_order, next_meeting_on, of_volunteer

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
FORMED = date(2026, 11, 2)


def base(referral: uuid.UUID) -> dict[str, Any]:
    return {"referral_id": referral, "circle_id": circle_id_of(referral), "agency_id": "mappa-humberside"}


def activated(referral: uuid.UUID, volunteers: list[str] | None = None) -> CircleActivated:
    return CircleActivated(
        **base(referral),
        formed_on=FORMED,
        volunteer_ids=volunteers or ["vol-a", "vol-b", "vol-c"],
        local_authority="hull",
        planned_end_on=date(2027, 11, 2),
        next_review_due=date(2027, 2, 2),
        activated_at=NOW - timedelta(days=22),
    )


def fold(facts: list[CircleFact]) -> CircleView:
    view = None
    for fact in facts:
        view = apply(view, fact)
    assert view is not None
    return view


def meeting(
    referral: uuid.UUID, meeting_id: uuid.UUID, held_on: date, received: bool = False
) -> MeetingRecorded:
    return MeetingRecorded(
        **base(referral),
        meeting_id=meeting_id,
        held_on=held_on,
        core_member_attendance=CoreMemberAttendance.ATTENDED,
        volunteer_ids=["vol-a"],
        minutes_due_at=datetime(held_on.year, held_on.month, held_on.day, tzinfo=UTC) + timedelta(hours=48),
        minutes_received=received,
        recorded_at=NOW,
    )


def test_facts_before_activation_are_not_kept_and_activation_twice_changes_nothing() -> None:
    referral = uuid.uuid4()
    assert apply(None, meeting(referral, uuid.uuid4(), FORMED)) is None
    view = fold([activated(referral)])
    assert apply(view, activated(referral, ["someone-else"])) == view
    assert view.status == "active" and view.volunteer_ids == ["vol-a", "vol-b", "vol-c"]


def test_minutes_status_received_late_due_and_overdue() -> None:
    referral = uuid.uuid4()
    on_time, late, due, overdue, by_clock = (uuid.uuid4() for _ in range(5))
    view = fold(
        [
            activated(referral),
            meeting(referral, on_time, date(2026, 11, 3), received=True),
            meeting(referral, late, date(2026, 11, 10)),
            MinutesSubmitted(**base(referral), meeting_id=late, submitted_at=NOW, on_time=False),
            meeting(referral, overdue, date(2026, 11, 17)),
            MinutesOverdue(
                **base(referral),
                meeting_id=overdue,
                held_on=date(2026, 11, 17),
                minutes_due_at=NOW,
                noticed_at=NOW,
            ),
            meeting(referral, by_clock, date(2026, 11, 20)),
            meeting(referral, due, date(2026, 11, 24)),
        ]
    )
    states = {m.meeting_id: m.minutes_status(NOW) for m in view.meetings}
    assert states == {on_time: "received", late: "late", overdue: "overdue", by_clock: "overdue", due: "due"}
    assert view.minutes_overdue(NOW) == 2
    assert [m.held_on for m in view.meetings] == sorted(m.held_on for m in view.meetings)
    assert view.last_meeting_on() == date(2026, 11, 24)
    again = apply(view, meeting(referral, on_time, date(2026, 11, 3)))
    assert again == view


def test_concerns_open_acknowledged_escalated_and_the_order_of_circles() -> None:
    calm, urgent, escalated, ended = (uuid.uuid4() for _ in range(4))
    concern = uuid.uuid4()
    raised = {"level": ConcernLevel.URGENT, "raised_at": NOW - timedelta(hours=5)}
    views = [
        fold([activated(calm)]),
        fold([activated(urgent), ConcernRaised(**base(urgent), concern_id=uuid.uuid4(), **raised)]),
        fold(
            [
                activated(escalated),
                ConcernRaised(**base(escalated), concern_id=concern, **raised),
                ConcernEscalated(**base(escalated), concern_id=concern, escalated_at=NOW, **raised),
            ]
        ),
        fold(
            [
                activated(ended),
                CircleEnded(
                    **base(ended),
                    outcome=CircleOutcome.ENDED_EARLY,
                    reason=EndReason.MOVED_AWAY,
                    ended_on=date(2026, 11, 20),
                    volunteer_ids=["vol-a"],
                    ended_at=NOW,
                ),
            ]
        ),
    ]
    ordered = in_order(views, NOW, NOW.date())
    assert [v.referral_id for v in ordered] == [escalated, urgent, calm, ended]
    assert ordered[0].escalated_concerns()[0].concern_id == concern
    assert ordered[-1].status == "ended" and ordered[-1].reason is EndReason.MOVED_AWAY
    acknowledged = apply(
        ordered[0],
        ConcernAcknowledged(
            **base(escalated),
            concern_id=concern,
            acknowledged_at=NOW,
            acknowledged_by="mappa-humberside",
            **raised,
        ),
    )
    assert acknowledged is not None and acknowledged.open_concerns() == []
    assert acknowledged.escalated_concerns() == []


def test_reviews_move_the_next_review_and_a_review_due_is_flagged() -> None:
    referral = uuid.uuid4()
    view = fold([activated(referral)])
    assert not view.review_due(date(2027, 2, 1)) and view.review_due(date(2027, 2, 2))
    review = ReviewRecorded(
        **base(referral),
        review_id=uuid.uuid4(),
        held_on=date(2027, 2, 1),
        next_review_due=date(2027, 5, 1),
    )
    reviewed = apply(view, review)
    assert (
        reviewed is not None and reviewed.next_review_due == date(2027, 5, 1) and len(reviewed.reviews) == 1
    )
    assert apply(reviewed, review) == reviewed


def test_a_volunteer_sees_only_their_circles_and_the_next_meeting_expected() -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    views = [fold([activated(mine, ["vol-a", "vol-b"])]), fold([activated(theirs, ["vol-c"])])]
    assert [v.referral_id for v in of_volunteer(views, "vol-a")] == [mine]
    assert of_volunteer(views, "vol-z") == []
    view = views[0]
    assert next_meeting_on(view, FORMED, 7) == FORMED + timedelta(days=7)
    met = apply(view, meeting(mine, uuid.uuid4(), date(2026, 11, 20)))
    assert met is not None
    assert next_meeting_on(met, date(2026, 11, 21), 7) == date(2026, 11, 27)
    assert next_meeting_on(met, date(2026, 12, 1), 7) == date(2026, 12, 1)  # late: expected today
