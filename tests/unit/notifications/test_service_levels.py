"""Working days, each referral's progress, escalations past the service levels, and the daily digest."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from schemas.common import Outcome, Reason, ReferralStatus
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn
from schemas.partner_api import Decision
from services.notifications.domain.digest import DigestSchedule, digest_due, figures
from services.notifications.domain.routing import RoutingConfig, digest_requests, escalation_requests
from services.notifications.rendering import render
from services.referral_progress.progress import ReferralProgress, apply
from services.referral_progress.service_levels import (
    ACKNOWLEDGEMENT_OVERDUE,
    DECISION_OVERDUE,
    ServiceLevels,
    escalations,
)
from services.referral_progress.settings import ServiceLevelSettings
from services.referral_progress.workdays import (
    BankHolidays,
    add_working_days,
    is_working_day,
    working_days_between,
)
from tests.samples import sample

HOLIDAYS = BankHolidays()
LEVELS = ServiceLevels(acknowledge_within_days=1, decide_within_days=10, holidays=HOLIDAYS)
CONFIG = RoutingConfig(
    coordinator_email="c@circles.example.org", partner_api_url="https://api", coordinator_url="https://page"
)
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def test_working_days_skip_weekends_and_bank_holidays() -> None:
    friday = at(date(2026, 11, 27), 16)
    assert add_working_days(friday, 1, HOLIDAYS) == at(date(2026, 11, 30), 16)  # Monday
    christmas_eve = at(date(2026, 12, 24), 12)  # Thu; Fri 25th and Mon 28th are bank holidays
    assert add_working_days(christmas_eve, 1, HOLIDAYS).date() == date(2026, 12, 29)
    saturday = at(date(2026, 11, 28), 12)
    assert add_working_days(saturday, 1, HOLIDAYS) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # end of Monday
    assert working_days_between(friday, at(date(2026, 12, 2)), HOLIDAYS) == 3  # Mon, Tue, Wed
    summer = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # 10:00 in London: the local time is kept
    assert add_working_days(summer, 10, HOLIDAYS) == datetime(2026, 7, 15, 9, 0, tzinfo=UTC)


def test_bank_holidays_are_england_and_wales_for_any_year() -> None:
    # Easter 2030 is 21 April; Christmas Day and Boxing Day 2032 fall on a weekend (substitute days).
    for day in (
        "2030-04-19",
        "2030-04-22",
        "2030-05-06",
        "2030-08-26",
        "2032-12-27",
        "2032-12-28",
        "2041-01-01",
    ):
        assert date.fromisoformat(day) in HOLIDAYS, day
    # Scotland's 2 January and first Monday of August, and St Andrew's Day, are working days here.
    for day in ("2030-01-02", "2030-08-05", "2026-11-30"):
        assert is_working_day(date.fromisoformat(day), HOLIDAYS), day
    christmas_eve = at(date(2032, 12, 24), 12)  # Friday
    assert add_working_days(christmas_eve, 1, HOLIDAYS).date() == date(2032, 12, 29)


def test_extra_days_off_are_added_to_the_bank_holidays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLES_BANK_HOLIDAYS", '["2031-06-02"]')
    holidays = ServiceLevelSettings().service_levels().holidays
    assert date(2031, 6, 2) in holidays and date(2031, 12, 25) in holidays
    assert date(2031, 6, 3) not in holidays and "2031-12-25" not in holidays


def submitted(version: int = 1, when: datetime = TUESDAY) -> ReferralSubmitted:
    return sample(ReferralSubmitted).model_copy(update={"version": version, "submitted_at": when})


def assessed(outcome: Outcome, when: datetime, version: int = 1) -> ReferralAssessed:
    codes = {Outcome.NEEDS_INFORMATION: ["release_date_missing"], Outcome.INELIGIBLE: ["no_consent"]}
    decision = Decision(
        outcome=outcome,
        reasons=[Reason(code=c, message=c) for c in codes.get(outcome, [])],
        policy_version="t",
        decided_at=when,
    )
    return sample(ReferralAssessed).model_copy(update={"decision": decision, "version": version})


def follow(*events: object) -> ReferralProgress:
    progress: ReferralProgress | None = None
    for event in events:
        updated = apply(progress, event, TUESDAY)  # type: ignore[arg-type]
        progress = updated if updated is not None else progress
    assert progress is not None
    return progress


def test_an_unacknowledged_referral_is_escalated_after_one_working_day_once() -> None:
    progress = follow(submitted())
    assert escalations(progress, TUESDAY + timedelta(hours=23), LEVELS) == []
    found = escalations(progress, TUESDAY + timedelta(days=1), LEVELS)
    assert [e.kind for e in found] == [ACKNOWLEDGEMENT_OVERDUE] and found[0].waiting_days == 1
    marked = progress.model_copy(update={"escalated": [found[0].key]})
    assert escalations(marked, TUESDAY + timedelta(days=2), LEVELS) == []


def test_the_decision_clock_runs_while_matching_and_stops_when_waiting_on_others() -> None:
    eligible = follow(submitted(), assessed(Outcome.ELIGIBLE, TUESDAY))
    due = add_working_days(TUESDAY, 10, HOLIDAYS)
    assert escalations(eligible, due - timedelta(minutes=1), LEVELS) == []
    [late] = escalations(eligible, due, LEVELS)
    assert late.kind == DECISION_OVERDUE and late.waiting_days == 10
    proposed = follow(submitted(), assessed(Outcome.ELIGIBLE, TUESDAY), sample(MatchProposed))
    assert proposed.status is ReferralStatus.PROPOSED and escalations(proposed, due, LEVELS)
    waiting = follow(submitted(), assessed(Outcome.NEEDS_INFORMATION, TUESDAY))
    assert escalations(waiting, due + timedelta(days=30), LEVELS) == []
    later = TUESDAY + timedelta(days=28)
    supplied = follow(
        submitted(),
        assessed(Outcome.NEEDS_INFORMATION, TUESDAY),
        submitted(2, later),
        assessed(Outcome.ELIGIBLE, later, 2),
    )
    assert supplied.clock_from == later and escalations(supplied, due + timedelta(days=7), LEVELS) == []
    for settled in (
        follow(submitted(), assessed(Outcome.INELIGIBLE, TUESDAY)),
        follow(submitted(), assessed(Outcome.ELIGIBLE, TUESDAY), sample(CircleFormed)),
        follow(submitted(), sample(ReferralWithdrawn)),
    ):
        assert escalations(settled, due + timedelta(days=100), LEVELS) == []


def test_progress_does_not_depend_on_the_order_of_the_two_topics() -> None:
    events = [submitted(), assessed(Outcome.ELIGIBLE, TUESDAY), sample(MatchDeferred)]
    forwards = follow(*events)
    matching_first = follow(events[2], events[0], events[1])
    assert forwards.status is matching_first.status is ReferralStatus.AWAITING_VOLUNTEERS
    assert follow(*events, *events) == forwards  # redelivered events change nothing


def test_an_escalation_message_tells_the_coordinator_how_long_it_waited() -> None:
    progress = follow(submitted(), assessed(Outcome.ELIGIBLE, TUESDAY))
    now = add_working_days(TUESDAY, 10, HOLIDAYS)
    [late] = escalations(progress, now, LEVELS)
    cause, requests = escalation_requests(progress, late, now, CONFIG)
    assert [r.recipient.id for r in requests] == ["coordinator"] and requests[0].template == "sla_escalation"
    again = escalation_requests(progress, late, now + timedelta(hours=1), CONFIG)
    assert again[0] == cause and again[1][0].notification_id == requests[0].notification_id
    text = render("sla_escalation", requests[0].context).text
    assert "10 working days" in text and "MAPPA-2026-0142" in text


def test_the_digest_is_due_once_a_working_day_after_its_time_with_counts() -> None:
    schedule = DigestSchedule(at=time(8, 0))
    assert digest_due(datetime(2026, 11, 24, 7, 59, tzinfo=UTC), schedule, LEVELS) is None
    assert digest_due(datetime(2026, 11, 24, 8, 0, tzinfo=UTC), schedule, LEVELS) == date(2026, 11, 24)
    assert digest_due(datetime(2026, 11, 28, 9, 0, tzinfo=UTC), schedule, LEVELS) is None  # Saturday
    assert digest_due(datetime(2026, 12, 28, 9, 0, tzinfo=UTC), schedule, LEVELS) is None  # bank holiday
    referral = uuid.uuid4()
    items = [
        follow(submitted(), assessed(Outcome.ELIGIBLE, TUESDAY), sample(MatchProposed)),
        follow(submitted(), assessed(Outcome.NEEDS_INFORMATION, TUESDAY)).model_copy(
            update={"referral_id": referral}
        ),
        follow(submitted(), assessed(Outcome.INELIGIBLE, TUESDAY)),
        follow(submitted(), sample(CircleFormed)),
    ]
    counts = figures(items, TUESDAY + timedelta(hours=2), LEVELS)
    assert (
        counts["open_total"] == 2 and counts["open_proposed"] == 1 and counts["open_needs_information"] == 1
    )
    assert (
        counts["received_last_day"] == 4
        and counts["circles_formed_this_year"] == 1
        and counts["overdue"] == 0
    )
    later = figures(items, TUESDAY + timedelta(days=30), LEVELS)
    assert later["overdue"] == 1 and later["received_last_day"] == 0
    [request] = digest_requests(date(2026, 11, 24), counts, TUESDAY, CONFIG)
    text = render("daily_digest", request.context).text
    assert "Open referrals: 2" in text and "Proposals waiting for your decision: 1" in text
    assert (
        request.notification_id == digest_requests(date(2026, 11, 24), {}, TUESDAY, CONFIG)[0].notification_id
    )


@pytest.mark.parametrize("status", [s for s in ReferralStatus])
def test_every_status_has_plain_words(status: ReferralStatus) -> None:
    from schemas.events.notifications import NotificationContext

    text = render("decision_made", NotificationContext(agency_reference="X-1", status=status)).subject
    assert "_" not in text.split(":")[-1]
