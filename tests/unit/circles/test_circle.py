"""Circle rules: formation, meetings and minutes, concerns and escalation, reviews, extension, ending."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.common import LocalAuthority
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleCommand,
    CircleEnded,
    CircleExtended,
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
    referral_id_of,
)
from schemas.events.matching import CircleFormed
from services.circles.domain.circle import (
    SCHEME_TIMEZONE,
    Circle,
    CircleRefused,
    Periods,
    UnknownCircle,
    activate,
    add_months,
    apply_command,
    detail,
    erase,
    fall_due,
    listing,
    minutes_due_at,
    without_personal,
)

REFERRAL = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
FORMED = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # Monday 2 March 2026 (GMT)
PERIODS = Periods()


def formed(**overrides: Any) -> CircleFormed:
    values: dict[str, Any] = {
        "referral_id": REFERRAL,
        "agency_id": "mappa-humberside",
        "circle_id": uuid.uuid4(),
        "proposal_id": uuid.uuid4(),
        "volunteer_ids": ["vol-1", "vol-2", "vol-3", "vol-4"],
        "local_authority": LocalAuthority.HULL,
        "formed_at": FORMED,
        "year": 2025,
        "circles_formed_in_year": 1,
        "yearly_target": 8,
    }
    return CircleFormed(**(values | overrides))


def circle(periods: Periods = PERIODS) -> Circle:
    change = activate(None, formed(), uuid.uuid4(), periods)
    assert change.circle is not None
    return change.circle


def command(kind: type[CircleCommand], at: datetime, **values: Any) -> Any:
    return kind(
        command_id=uuid.uuid4(), referral_id=REFERRAL, requested_by="cli:tester", requested_at=at, **values
    )


def meeting(held_on: date, at: datetime, minutes: str | None = None, **values: Any) -> RecordMeeting:
    result: RecordMeeting = command(
        RecordMeeting,
        at,
        meeting_id=uuid.uuid4(),
        held_on=held_on,
        core_member_attendance=values.pop("attendance", CoreMemberAttendance.ATTENDED),
        minutes=minutes,
        **values,
    )
    return result


def apply(
    state: Circle, cmd: CircleCommand, now: datetime, periods: Periods = PERIODS
) -> tuple[Circle, list[Any]]:
    change = apply_command(state, cmd, now, periods)
    assert change.circle is not None
    return change.circle, [fact for _, fact in change.facts]


# -- formation ---------------------------------------------------------------------------------------------


def test_a_formed_circle_is_active_from_its_formation_date_with_review_and_end_planned() -> None:
    change = activate(None, formed(), uuid.uuid4(), PERIODS)
    state = change.circle
    assert state is not None and state.status is CircleStatus.ACTIVE
    assert state.circle_id == f"circle-{REFERRAL}" == circle_id_of(REFERRAL)
    assert referral_id_of(state.circle_id) == REFERRAL
    assert state.formed_on == date(2026, 3, 2)
    assert state.next_review_due == date(2026, 6, 2)
    assert state.planned_end_on == date(2027, 3, 2)
    ((_, fact),) = change.facts
    assert isinstance(fact, CircleActivated) and fact.volunteer_ids == ["vol-1", "vol-2", "vol-3", "vol-4"]
    assert activate(state, formed(), uuid.uuid4(), PERIODS).circle is None  # formed again: nothing new


def test_periods_are_settings() -> None:
    state = circle(Periods(review_every_months=2, planned_months=6))
    assert (state.next_review_due, state.planned_end_on) == (date(2026, 5, 2), date(2026, 9, 2))


def test_months_end_on_the_last_day_of_shorter_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2027, 12, 15), 1) == date(2028, 1, 15)


def test_formation_day_is_the_london_day() -> None:
    late = formed(formed_at=datetime(2026, 7, 1, 23, 30, tzinfo=UTC))  # 00:30 BST on 2 July
    change = activate(None, late, uuid.uuid4(), PERIODS)
    assert change.circle is not None and change.circle.formed_on == date(2026, 7, 2)


# -- meetings and minutes ----------------------------------------------------------------------------------


def test_a_meeting_is_recorded_with_minutes_due_48_hours_after_its_day_began() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    state, facts = apply(circle(), meeting(date(2026, 3, 9), now, volunteer_ids=["vol-1"]), now)
    (recorded,) = facts
    assert isinstance(recorded, MeetingRecorded) and not recorded.minutes_received
    assert recorded.minutes_due_at == datetime(2026, 3, 11, 0, 0, tzinfo=UTC)
    assert recorded.minutes_due_at == minutes_due_at(date(2026, 3, 9), PERIODS)
    assert state.meetings[0].minutes_state(now) == "due"
    assert state.next_deadline == recorded.minutes_due_at


def test_a_meeting_with_its_minutes_has_them_on_time() -> None:
    now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    state, facts = apply(circle(), meeting(date(2026, 3, 9), now, minutes="synthetic minutes"), now)
    assert [type(f) for f in facts] == [MeetingRecorded, MinutesSubmitted]
    assert facts[1].on_time and state.meetings[0].minutes == "synthetic minutes"
    assert state.next_deadline is None
    assert "synthetic minutes" not in facts[0].model_dump_json() + facts[1].model_dump_json()


@pytest.mark.parametrize(
    ("held_on", "why"),
    [(date(2026, 3, 1), "before the circle was formed"), (date(2026, 3, 11), "in the future")],
)
def test_a_meeting_is_dated_between_formation_and_today(held_on: date, why: str) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with pytest.raises(CircleRefused, match=why):
        apply_command(circle(), meeting(held_on, now), now, PERIODS)


def test_the_formation_day_and_today_are_allowed() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 2), now), now)
    assert len(state.meetings) == 1


def test_a_meeting_names_only_the_circles_volunteers() -> None:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    with pytest.raises(CircleRefused, match="vol-9 are not in circle"):
        apply_command(
            circle(), meeting(date(2026, 3, 9), now, volunteer_ids=["vol-1", "vol-9"]), now, PERIODS
        )


def test_minutes_after_48_hours_are_late_and_missing_minutes_become_overdue_once() -> None:
    recorded_at = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 9), recorded_at), recorded_at)
    meeting_id = state.meetings[0].meeting_id
    assert fall_due(state, datetime(2026, 3, 10, 23, 59, tzinfo=UTC)).circle is None  # not yet due
    later = datetime(2026, 3, 11, 0, 1, tzinfo=UTC)
    change = fall_due(state, later)
    assert change.circle is not None
    ((fact_id, overdue),) = change.facts
    assert isinstance(overdue, MinutesOverdue) and overdue.meeting_id == meeting_id
    assert change.circle.meetings[0].minutes_state(later) == "overdue"
    assert change.circle.next_deadline is None
    assert fall_due(change.circle, later + timedelta(days=3)).circle is None  # told once
    assert fall_due(state, later + timedelta(hours=1)).facts[0][0] == fact_id  # the same id on a replay
    late, facts = apply(
        change.circle, command(SubmitMinutes, later, meeting_id=meeting_id, minutes="late minutes"), later
    )
    assert isinstance(facts[0], MinutesSubmitted) and not facts[0].on_time
    assert late.meetings[0].minutes_state(later) == "late"


def test_minutes_are_submitted_once_and_for_a_known_meeting() -> None:
    now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 9), now), now)
    meeting_id = state.meetings[0].meeting_id
    with pytest.raises(CircleRefused, match="no meeting"):
        apply_command(state, command(SubmitMinutes, now, meeting_id=uuid.uuid4(), minutes="x"), now, PERIODS)
    state, facts = apply(state, command(SubmitMinutes, now, meeting_id=meeting_id, minutes="x"), now)
    assert facts[0].on_time
    with pytest.raises(CircleRefused, match="already has its minutes"):
        apply_command(state, command(SubmitMinutes, now, meeting_id=meeting_id, minutes="y"), now, PERIODS)


def test_a_minutes_period_is_a_setting() -> None:
    now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    periods = Periods(minutes_due_hours=24)
    _, facts = apply(circle(periods), meeting(date(2026, 3, 9), now), now, periods)
    assert facts[0].minutes_due_at == datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def test_a_command_applied_twice_changes_nothing_the_second_time() -> None:
    now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    cmd = meeting(date(2026, 3, 9), now)
    state, _ = apply(circle(), cmd, now)
    again = apply_command(state, cmd, now, PERIODS)
    assert again.circle is None and again.facts == []
    other = cmd.model_copy(update={"command_id": uuid.uuid4()})  # the same meeting under another command
    assert apply_command(state, other, now, PERIODS).circle is None


def test_fact_ids_are_derived_from_the_command() -> None:
    now = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    cmd = meeting(date(2026, 3, 9), now, minutes="m")
    first = apply_command(circle(), cmd, now, PERIODS)
    second = apply_command(circle(), cmd, now, PERIODS)
    assert [i for i, _ in first.facts] == [i for i, _ in second.facts]
    assert len({i for i, _ in first.facts}) == 2


def test_an_unknown_circle_is_refused() -> None:
    now = datetime(2026, 3, 9, tzinfo=UTC)
    with pytest.raises(UnknownCircle, match=f"no circle circle-{REFERRAL}"):
        apply_command(None, meeting(date(2026, 3, 9), now), now, PERIODS)


# -- concerns ----------------------------------------------------------------------------------------------


def concern(at: datetime, level: ConcernLevel = ConcernLevel.URGENT, **values: Any) -> RaiseConcern:
    result: RaiseConcern = command(
        RaiseConcern, at, concern_id=uuid.uuid4(), level=level, summary="synthetic summary", **values
    )
    return result


def test_an_urgent_concern_is_open_until_acknowledged_and_escalates_after_4_hours() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, (fact,) = apply(circle(), concern(raised, raised_by="vol-2"), raised)
    assert isinstance(fact, ConcernRaised) and fact.escalation_due_at == raised + timedelta(hours=4)
    assert "synthetic summary" not in fact.model_dump_json()
    assert state.concerns[0].state is ConcernState.OPEN and state.next_deadline == fact.escalation_due_at
    assert fall_due(state, raised + timedelta(hours=3, minutes=59)).circle is None
    change = fall_due(state, raised + timedelta(hours=4, minutes=1))
    assert change.circle is not None
    ((_, escalated),) = change.facts
    assert isinstance(escalated, ConcernEscalated) and escalated.concern_id == fact.concern_id
    assert fall_due(change.circle, raised + timedelta(days=1)).circle is None  # escalated once
    later = raised + timedelta(hours=6)
    ack = command(AcknowledgeConcern, later, concern_id=fact.concern_id, agency_id="mappa-humberside")
    acknowledged, (done,) = apply(change.circle, ack, later)
    assert isinstance(done, ConcernAcknowledged) and done.acknowledged_at == later
    assert acknowledged.concerns[0].state is ConcernState.ACKNOWLEDGED
    again = command(AcknowledgeConcern, later, concern_id=fact.concern_id, agency_id="mappa-humberside")
    assert apply_command(acknowledged, again, later, PERIODS).circle is None  # twice: nothing changes


def test_an_acknowledged_urgent_concern_never_escalates() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, (fact,) = apply(circle(), concern(raised), raised)
    ack = command(
        AcknowledgeConcern,
        raised + timedelta(hours=1),
        concern_id=fact.concern_id,
        agency_id="mappa-humberside",
    )
    state, _ = apply(state, ack, raised + timedelta(hours=1))
    assert state.next_deadline is None
    assert fall_due(state, raised + timedelta(hours=5)).circle is None


def test_a_routine_concern_stays_open_and_never_escalates() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, (fact,) = apply(circle(), concern(raised, ConcernLevel.ROUTINE), raised)
    assert fact.escalation_due_at is None and state.next_deadline is None
    assert fall_due(state, raised + timedelta(days=30)).circle is None
    assert detail(state, raised + timedelta(days=30))["open_concerns"] == 1


def test_the_escalation_period_is_a_setting() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    periods = Periods(concern_escalation_hours=1)
    _, (fact,) = apply(circle(periods), concern(raised), raised, periods)
    assert fact.escalation_due_at == raised + timedelta(hours=1)


def test_only_the_referring_agency_acknowledges() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, (fact,) = apply(circle(), concern(raised), raised)
    ack = command(AcknowledgeConcern, raised, concern_id=fact.concern_id, agency_id="other-agency")
    with pytest.raises(CircleRefused, match="no concern"):
        apply_command(state, ack, raised, PERIODS)


def test_a_concern_is_raised_by_a_volunteer_of_the_circle() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    with pytest.raises(CircleRefused, match="vol-9 is not in circle"):
        apply_command(circle(), concern(raised, raised_by="vol-9"), raised, PERIODS)


def test_escalated_concerns_come_first_in_the_detail() -> None:
    raised = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, _ = apply(circle(), concern(raised, ConcernLevel.ROUTINE), raised)
    state, (urgent,) = apply(state, concern(raised + timedelta(minutes=5)), raised + timedelta(minutes=5))
    change = fall_due(state, raised + timedelta(hours=5))
    assert change.circle is not None
    shown = detail(change.circle, raised + timedelta(hours=5))
    concerns = shown["concerns"]
    assert isinstance(concerns, list) and concerns[0]["concern_id"] == str(urgent.concern_id)
    assert shown["escalated_concerns"] == 1


# -- reviews, extension, ending ----------------------------------------------------------------------------


def test_a_review_sets_the_next_one_due_3_months_later() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    review = command(RecordReview, now, review_id=uuid.uuid4(), held_on=date(2026, 5, 28))
    state, (fact,) = apply(circle(), review, now)
    assert isinstance(fact, ReviewRecorded) and fact.next_review_due == date(2026, 8, 28)
    assert state.next_review_due == date(2026, 8, 28)
    assert detail(state, now)["review_overdue"] is False
    assert detail(circle(), datetime(2026, 6, 3, tzinfo=UTC))["review_overdue"] is True
    with pytest.raises(CircleRefused, match="in the future"):
        apply_command(
            state, command(RecordReview, now, review_id=uuid.uuid4(), held_on=date(2026, 6, 2)), now, PERIODS
        )
    with pytest.raises(CircleRefused, match="before the last review"):
        apply_command(
            state, command(RecordReview, now, review_id=uuid.uuid4(), held_on=date(2026, 5, 1)), now, PERIODS
        )


def test_an_extension_moves_the_planned_end() -> None:
    now = datetime(2027, 2, 1, tzinfo=UTC)
    state, (fact,) = apply(circle(), command(ExtendCircle, now, months=6), now)
    assert isinstance(fact, CircleExtended) and fact.planned_end_on == date(2027, 9, 2)
    assert state.planned_end_on == date(2027, 9, 2) and state.extended_months == 6


def test_a_completed_circle_ends_and_frees_its_volunteers() -> None:
    now = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
    end = command(EndCircle, now, outcome=CircleOutcome.COMPLETED, ended_on=date(2027, 3, 2))
    state, (fact,) = apply(circle(), end, now)
    assert isinstance(fact, CircleEnded) and fact.volunteer_ids == ["vol-1", "vol-2", "vol-3", "vol-4"]
    assert state.status is CircleStatus.ENDED and state.outcome is CircleOutcome.COMPLETED
    assert detail(state, now)["next_review_due"] is None
    for refused in (
        meeting(date(2027, 3, 2), now),
        concern(now),
        command(ExtendCircle, now, months=1),
        command(RecordReview, now, review_id=uuid.uuid4(), held_on=date(2027, 3, 2)),
        command(EndCircle, now, outcome=CircleOutcome.COMPLETED, ended_on=date(2027, 3, 2)),
    ):
        with pytest.raises(CircleRefused, match="has ended"):
            apply_command(state, refused, now, PERIODS)


def test_ending_early_needs_a_reason_code_and_completing_takes_none() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="needs a reason"):
        command(EndCircle, now, outcome=CircleOutcome.ENDED_EARLY, ended_on=date(2026, 5, 1))
    with pytest.raises(ValidationError):
        command(EndCircle, now, outcome=CircleOutcome.ENDED_EARLY, reason="bored", ended_on=date(2026, 5, 1))
    with pytest.raises(CircleRefused, match="takes no reason"):
        apply_command(
            circle(),
            command(
                EndCircle,
                now,
                outcome=CircleOutcome.COMPLETED,
                reason=EndReason.OTHER,
                ended_on=date(2026, 5, 1),
            ),
            now,
            PERIODS,
        )
    early = command(
        EndCircle,
        now,
        outcome=CircleOutcome.ENDED_EARLY,
        reason=EndReason.RECALLED_TO_CUSTODY,
        ended_on=date(2026, 5, 1),
    )
    state, (fact,) = apply(circle(), early, now)
    assert fact.reason is EndReason.RECALLED_TO_CUSTODY and state.end_reason is EndReason.RECALLED_TO_CUSTODY


def test_an_ending_is_dated_within_the_circles_life() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 4, 20), now), now)
    for ended_on, why in (
        (date(2026, 4, 19), "before the last meeting"),
        (date(2026, 5, 2), "in the future"),
    ):
        with pytest.raises(CircleRefused, match=why):
            apply_command(
                state,
                command(EndCircle, now, outcome=CircleOutcome.COMPLETED, ended_on=ended_on),
                now,
                PERIODS,
            )


def test_minutes_and_acknowledgements_still_apply_after_the_end() -> None:
    now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 5, 1), now), now)
    state, (raised,) = apply(state, concern(now), now)
    state, _ = apply(
        state, command(EndCircle, now, outcome=CircleOutcome.COMPLETED, ended_on=date(2026, 5, 1)), now
    )
    state, _ = apply(
        state, command(SubmitMinutes, now, meeting_id=state.meetings[0].meeting_id, minutes="m"), now
    )
    state, _ = apply(
        state,
        command(AcknowledgeConcern, now, concern_id=raised.concern_id, agency_id="mappa-humberside"),
        now,
    )
    assert state.concerns[0].state is ConcernState.ACKNOWLEDGED


# -- erasure and listing -----------------------------------------------------------------------------------


def test_erasure_drops_minutes_and_summaries_and_refuses_what_follows() -> None:
    now = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 9), now, minutes="secret minutes"), now)
    state, _ = apply(state, concern(now), now)
    change = erase(state, now)
    assert change.circle is not None and change.facts == []
    erased = change.circle
    assert erased.meetings[0].minutes is None and erased.concerns[0].summary is None
    assert "secret" not in erased.model_dump_json() and erased.next_deadline is None
    assert fall_due(erased, now + timedelta(days=5)).circle is None
    with pytest.raises(CircleRefused, match="erased"):
        apply_command(erased, meeting(date(2026, 3, 9), now), now, PERIODS)
    assert erase(erased, now).circle is None


def test_the_listing_has_the_contracts_fields() -> None:
    now = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 9), now), now)
    state = fall_due(state, now).circle or state
    (row,) = listing([state], now)
    assert set(row) >= {
        "circle_id", "referral_id", "status", "formed_on", "volunteers", "meetings_held", "last_meeting_on",
        "minutes_overdue", "next_review_due", "open_concerns", "outcome",
    }  # fmt: skip
    assert (row["meetings_held"], row["last_meeting_on"], row["minutes_overdue"]) == (1, "2026-03-09", 1)
    assert row["outcome"] is None and row["status"] == "active"


def test_the_deadline_index_sorts_as_time_does_whatever_the_zone() -> None:
    from services.circles.agents import deadline_text

    london = datetime(2026, 7, 1, 9, 0, tzinfo=SCHEME_TIMEZONE)  # 08:00 UTC
    assert deadline_text(london) == "2026-07-01T08:00:00.000000Z"
    assert deadline_text(datetime(2026, 7, 1, 8, 30, tzinfo=UTC)) > deadline_text(london)


def test_a_circle_whose_key_is_gone_is_read_without_its_minutes_and_summaries() -> None:
    now = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    state, _ = apply(circle(), meeting(date(2026, 3, 9), now, minutes="m"), now)
    state, _ = apply(state, concern(now), now)
    stored = json.loads(state.model_dump_json())
    stored["meetings"][0]["minutes"] = "sealed:v1:" + "0" * 32 + ":noise"
    stripped = without_personal(stored)
    assert stripped.meetings[0].minutes is None and stripped.concerns[0].summary is None
    assert stripped.meetings[0].meeting_id == state.meetings[0].meeting_id
