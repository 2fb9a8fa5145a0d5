"""The commissioner's return: every figure on hand-made event sequences, with the period's edges."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from schemas.common import Gender, LocalAuthority, Outcome
from schemas.coordinator_api import VolunteerView
from schemas.envelope import Event
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
    circle_id_of,
)
from schemas.events.coordinator import AuditRecorded, MappaPanelRecorded, MentoringSessionRecorded
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn
from schemas.partner_api import Decision
from services.coordinator.domain.history import archived, unarchived
from services.coordinator.domain.report import Period
from services.coordinator.domain.scheme_return import (
    SchemeHistory,
    return_csv,
    scheme_return,
)
from services.coordinator.domain.targets import load_targets
from tests.samples import profile

TARGETS = load_targets()
Q1 = Period(start=date(2026, 4, 1), end=date(2026, 6, 30))


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def formed(n: int, day: str) -> CircleFormed:
    return CircleFormed(
        referral_id=rid(n),
        agency_id="mappa",
        circle_id=uuid.uuid4(),
        proposal_id=uuid.uuid4(),
        volunteer_ids=["vol-1", "vol-2", "vol-3", "vol-4"],
        local_authority=LocalAuthority.HULL,
        formed_at=at(day),
        year=2026,
        circles_formed_in_year=1,
        yearly_target=8,
    )


def submitted(n: int, day: str, agency: str = "mappa", version: int = 1) -> ReferralSubmitted:
    return ReferralSubmitted(
        referral_id=rid(n),
        agency_id=agency,
        agency_reference=f"REF-{n}",
        version=version,
        submitted_at=at(day),
        profile=profile(),
        detail_url="http://x/v1/referrals",
    )


def assessed(n: int, day: str, outcome: Outcome, agency: str = "mappa") -> ReferralAssessed:
    return ReferralAssessed(
        referral_id=rid(n),
        agency_id=agency,
        agency_reference=f"REF-{n}",
        version=1,
        decision=Decision(outcome=outcome, reasons=[], policy_version="2026.1", decided_at=at(day)),
        profile=profile(),
    )


def panel(n: int, day: str, level: int, attended: bool) -> MappaPanelRecorded:
    return MappaPanelRecorded(
        panel_id=uuid.uuid4(),
        referral_id=rid(n),
        level=2 if level == 2 else 3,
        held_on=date.fromisoformat(day),
        attended=attended,
        recorded_by="t",
        recorded_at=at("2026-12-01"),
    )


def session(n: int, day: str, minutes: int) -> MentoringSessionRecorded:
    return MentoringSessionRecorded(
        session_id=uuid.uuid4(),
        referral_id=rid(n),
        held_on=date.fromisoformat(day),
        minutes=minutes,
        recorded_by="t",
        recorded_at=at("2026-12-01"),
    )


def audit(day: str, actions: int) -> AuditRecorded:
    return AuditRecorded(
        audit_id=uuid.uuid4(),
        held_on=date.fromisoformat(day),
        area="supervision",
        result="actions" if actions else "met",
        actions=actions,
        recorded_by="t",
        recorded_at=at("2026-12-01"),
    )


def volunteer(vid: str, **dates: Any) -> VolunteerView:
    values: dict[str, Any] = {
        "volunteer_id": vid,
        "name": "Synthetic",
        "gender": Gender.FEMALE,
        "local_authority": LocalAuthority.HULL,
        "postcode_district": "HU7",
        "experienced": False,
        "skills": [],
        "availability": [],
        "max_circles": 2,
        "matchable": True,
        "not_matchable_because": [],
        "open_proposals": [],
        "circles": [],
        "dbs_checked_on": None,
        "dbs_expires_on": None,
        "trained_on": None,
        "last_supervised_on": None,
        "supervision_due_on": None,
        "withdrawn": False,
        "registered_on": date(2025, 1, 1),
    }
    values.update(dates)
    return VolunteerView.model_validate(values)


def figures(events: list[Event], volunteers: list[VolunteerView] | None = None, period: Period = Q1) -> Any:
    return scheme_return(SchemeHistory(events=events, volunteers=volunteers or []), period, TARGETS).as_json()


def test_a_circle_operates_when_active_on_any_day_of_the_period() -> None:
    events: list[Event] = [
        formed(1, "2025-10-01"),  # active across the period's start
        formed(2, "2026-06-30"),  # formed on its last day
        formed(3, "2026-07-01"),  # formed after it
        formed(4, "2026-04-01"),  # formed on its first day
    ]
    result = figures(events)
    assert result["circles"]["operating"] == 3
    assert result["circles"]["formed"] == 2
    assert result["period"] == {"from": "2026-04-01", "to": "2026-06-30"}


def test_on_track_is_operating_against_the_yearly_target_pro_rata() -> None:
    year = Period(start=date(2026, 4, 1), end=date(2027, 3, 31))
    one = figures([formed(1, "2026-05-01")], period=year)["circles"]
    assert one["target_per_year"] == 8 and one["target_pro_rata"] == 8.0 and not one["on_track"]
    quarter = figures([formed(n, "2026-05-01") for n in range(2)])["circles"]
    assert quarter["target_pro_rata"] == round(8 * 91 / 365, 2)  # 1.99
    assert quarter["operating"] == 2 and quarter["on_track"]
    assert not figures([formed(1, "2026-05-01")])["circles"]["on_track"]


def test_panels_sessions_and_audits_count_by_the_day_they_were_held() -> None:
    events: list[Event] = [
        panel(1, "2026-03-31", 2, True),  # before
        panel(1, "2026-04-01", 2, True),
        panel(2, "2026-05-10", 3, False),
        panel(2, "2026-06-30", 3, True),
        panel(3, "2026-07-01", 2, True),  # after
        session(1, "2026-04-02", 60),
        session(1, "2026-05-02", 45),
        session(2, "2026-06-30", 30),
        session(3, "2026-07-01", 90),
        audit("2026-04-15", 0),
        audit("2026-05-15", 3),
        audit("2026-03-15", 1),
    ]
    result = figures(events)
    assert result["mappa_panels"] == {
        "requested": 3,
        "attended": 2,
        "by_level": {"2": {"requested": 1, "attended": 1}, "3": {"requested": 2, "attended": 1}},
    }
    assert result["mentoring"] == {"service_users": 2, "sessions": 3, "minutes": 135}
    assert result["audits"] == {"held": 2, "met": 1, "with_actions": 1}


def test_referrals_received_in_the_period_and_where_they_stood_at_its_end() -> None:
    events: list[Event] = [
        submitted(1, "2026-03-31"),  # received before: not counted
        submitted(2, "2026-04-01", "probation"),
        assessed(2, "2026-04-02", Outcome.ELIGIBLE, "probation"),
        submitted(3, "2026-05-01"),
        assessed(3, "2026-05-02", Outcome.DEFERRED),
        assessed(3, "2026-07-05", Outcome.ELIGIBLE),  # after the end: still deferred at the end
        submitted(4, "2026-06-30"),  # undecided at the end
        submitted(5, "2026-04-10"),
        submitted(5, "2026-04-20", version=2),  # an amendment is not a new referral
        assessed(5, "2026-04-21", Outcome.INELIGIBLE),
        ReferralWithdrawn(
            referral_id=rid(5),
            agency_id="mappa",
            agency_reference="REF-5",
            version=2,
            withdrawn_at=at("2026-05-01"),
        ),
    ]
    result = figures(events)["referrals"]
    assert result["received"] == 4
    assert result["by_agency"] == {"mappa": 3, "probation": 1}
    assert result["by_outcome"] == {
        "eligible": 1,
        "ineligible": 0,
        "needs_information": 0,
        "deferred": 1,
        "withdrawn": 1,
        "undecided": 1,
    }


def test_volunteers_as_they_stood_at_the_end_of_the_period() -> None:
    volunteers = [
        volunteer(
            "ok",
            dbs_checked_on=date(2024, 1, 1),
            trained_on=date(2025, 2, 1),
            last_supervised_on=date(2026, 6, 1),
        ),
        volunteer("dbs-lapsed", dbs_checked_on=date(2023, 6, 30), trained_on=date(2025, 2, 1)),
        volunteer(
            "late-supervision",
            dbs_checked_on=date(2025, 1, 1),
            trained_on=date(2025, 2, 1),
            last_supervised_on=date(2026, 5, 4),
        ),
        volunteer("registered-after", registered_on=date(2026, 7, 1), dbs_checked_on=date(2026, 7, 1)),
        volunteer(
            "withdrawn-inside", withdrawn=True, withdrawn_on=date(2026, 6, 1), dbs_checked_on=date(2026, 1, 1)
        ),
        volunteer("withdrawn-after", withdrawn=True, withdrawn_on=date(2026, 7, 2)),
        volunteer("vetted-after-the-end", dbs_checked_on=date(2026, 7, 1)),
    ]
    result = figures([], volunteers)["volunteers"]
    # active: ok, dbs-lapsed, late-supervision, withdrawn-after, vetted-after-the-end
    assert result == {"active": 5, "dbs_in_date": 2, "trained": 3, "supervised_in_date": 1}


def test_funding_is_the_contract_years_and_cost_per_operating_circle() -> None:
    none = figures([])["funding"]
    assert none == {
        "total": 50668.99,
        "opcc": 25841.18,
        "probation": 24827.81,
        "cost_per_operating_circle": None,
    }
    four = figures([formed(n, "2026-05-01") for n in range(4)])["funding"]
    assert four["cost_per_operating_circle"] == 12667.25


def test_the_same_history_gives_the_same_return_whatever_its_order_and_after_the_archive() -> None:
    events: list[Event] = [
        formed(1, "2026-05-01"),
        submitted(2, "2026-04-01"),
        assessed(2, "2026-04-02", Outcome.ELIGIBLE),
        panel(1, "2026-05-10", 3, True),
    ]
    archive = [
        archived(str(uuid.uuid4()), e, at("2026-05-01"))
        for e in events
        if not isinstance(e, MappaPanelRecorded)
    ]
    restored = [*unarchived(archive), events[-1]]
    assert figures(list(reversed(events))) == figures(events) == figures(restored)


def test_the_csv_has_a_header_and_one_row_per_figure() -> None:
    result = scheme_return(SchemeHistory(events=[formed(1, "2026-05-01")], volunteers=[]), Q1, TARGETS)
    rows = list(csv.reader(io.StringIO(return_csv(result))))
    assert rows[0] == ["section", "figure", "value"]
    table = {(section, figure): value for section, figure, value in rows[1:]}
    assert len(table) == len(rows) - 1
    assert table[("circles", "operating")] == "1"
    assert table[("circles", "on_track")] == "false"
    assert table[("mappa_panels", "by_level.3.attended")] == "0"
    assert table[("funding", "opcc")] == "25841.18"
    assert table[("period", "from")] == "2026-04-01"
    for section in (
        "circles",
        "mappa_panels",
        "mentoring",
        "audits",
        "meetings",
        "concerns",
        "volunteers",
        "referrals",
        "funding",
    ):
        assert any(s == section for s, _ in table), section


F = TypeVar("F", bound=CircleFact)


def fact(kind: type[F], n: int, **values: Any) -> F:
    return kind(referral_id=rid(n), circle_id=circle_id_of(rid(n)), agency_id="mappa", **values)


def activated(n: int, day: str) -> CircleActivated:
    return fact(
        CircleActivated,
        n,
        formed_on=date.fromisoformat(day),
        volunteer_ids=["vol-1"],
        local_authority=LocalAuthority.HULL,
        planned_end_on=date.fromisoformat(day).replace(year=date.fromisoformat(day).year + 1),
        next_review_due=date.fromisoformat(day),
        activated_at=at(day),
    )


def ended(n: int, day: str, outcome: CircleOutcome) -> CircleEnded:
    return fact(
        CircleEnded,
        n,
        outcome=outcome,
        reason=None if outcome is CircleOutcome.COMPLETED else EndReason.MOVED_AWAY,
        ended_on=date.fromisoformat(day),
        volunteer_ids=["vol-1"],
        ended_at=at(day),
    )


def meeting(n: int, meeting_id: int, day: str, with_minutes: bool = False) -> MeetingRecorded:
    return fact(
        MeetingRecorded,
        n,
        meeting_id=rid(1000 + meeting_id),
        held_on=date.fromisoformat(day),
        core_member_attendance=CoreMemberAttendance.ATTENDED,
        volunteer_ids=["vol-1"],
        minutes_due_at=at(day) + timedelta(hours=48),
        minutes_received=with_minutes,
        recorded_at=at(day),
    )


def concern(n: int, concern_id: int, raised: datetime, level: ConcernLevel) -> ConcernRaised:
    return fact(ConcernRaised, n, concern_id=rid(2000 + concern_id), level=level, raised_at=raised)


def acknowledged(n: int, concern_id: int, raised: datetime, after: timedelta, level: ConcernLevel) -> Any:
    return fact(
        ConcernAcknowledged,
        n,
        concern_id=rid(2000 + concern_id),
        level=level,
        acknowledged_at=raised + after,
        acknowledged_by="mappa",
        raised_at=raised,
    )


def test_circles_operating_formed_and_ended_at_the_period_edges() -> None:
    events: list[Event] = [
        activated(1, "2025-09-01"),  # active across the start, ended inside
        ended(1, "2026-05-15", CircleOutcome.COMPLETED),
        activated(2, "2025-09-01"),  # ended the day before the period
        ended(2, "2026-03-31", CircleOutcome.ENDED_EARLY),
        activated(3, "2025-10-01"),  # ended on the first day: active on it
        ended(3, "2026-04-01", CircleOutcome.ENDED_EARLY),
        activated(4, "2026-07-01"),  # formed after
        formed(5, "2026-06-30"),  # formed (matching) on the last day, activated then
        activated(5, "2026-06-30"),
        activated(6, "2026-04-10"),  # formed inside, ended after
        ended(6, "2026-08-01", CircleOutcome.ENDED_EARLY),
    ]
    circles = figures(events)["circles"]
    assert circles["operating"] == 4  # 1, 3, 5, 6
    assert circles["formed"] == 2  # 5, 6
    assert circles["ended"] == {"completed": 1, "ended_early": 1}  # 1, 3
    assert (
        figures(events, period=Period(start=date(2026, 7, 1), end=date(2026, 7, 31)))["circles"]["operating"]
        == 3
    )  # 4, 5, 6


def test_meetings_and_their_minutes_in_the_period() -> None:
    events: list[Event] = [
        activated(1, "2026-01-01"),
        meeting(1, 1, "2026-03-31"),  # before the period
        meeting(1, 2, "2026-04-01", with_minutes=True),  # on time with the meeting
        meeting(1, 3, "2026-05-01"),
        fact(MinutesSubmitted, 1, meeting_id=rid(1003), submitted_at=at("2026-05-02"), on_time=True),
        meeting(1, 4, "2026-06-01"),
        fact(
            MinutesOverdue,
            1,
            meeting_id=rid(1004),
            held_on=date(2026, 6, 1),
            minutes_due_at=at("2026-06-03"),
            noticed_at=at("2026-06-03"),
        ),
        fact(MinutesSubmitted, 1, meeting_id=rid(1004), submitted_at=at("2026-06-10"), on_time=False),
        meeting(1, 5, "2026-06-29"),
        fact(
            MinutesOverdue,
            1,
            meeting_id=rid(1005),
            held_on=date(2026, 6, 29),
            minutes_due_at=at("2026-07-01"),
            noticed_at=at("2026-07-01"),
        ),
        meeting(1, 6, "2026-06-30"),  # minutes not in yet, not overdue: neither
    ]
    assert figures(events)["meetings"] == {"held": 5, "minutes_on_time": 2, "minutes_late": 2}
    assert figures(list(reversed(events)))["meetings"] == figures(events)["meetings"]


def test_concerns_raised_and_acknowledged_within_target() -> None:
    early = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 April in London: inside
    inside = at("2026-05-01")
    events: list[Event] = [
        activated(1, "2026-01-01"),
        concern(1, 1, early, ConcernLevel.URGENT),
        acknowledged(1, 1, early, timedelta(hours=4), ConcernLevel.URGENT),  # exactly on target
        concern(1, 2, inside, ConcernLevel.URGENT),
        acknowledged(1, 2, inside, timedelta(hours=4, minutes=1), ConcernLevel.URGENT),
        fact(
            ConcernEscalated,
            1,
            concern_id=rid(2002),
            level=ConcernLevel.URGENT,
            raised_at=inside,
            escalated_at=inside + timedelta(hours=4),
        ),
        concern(1, 3, inside, ConcernLevel.ROUTINE),
        acknowledged(1, 3, inside, timedelta(hours=1), ConcernLevel.ROUTINE),
        concern(1, 4, at("2026-07-01"), ConcernLevel.URGENT),  # after
        concern(1, 5, at("2026-06-30"), ConcernLevel.ROUTINE),  # never acknowledged
    ]
    assert figures(events)["concerns"] == {"raised": 4, "urgent": 2, "acknowledged_within_target": 2}
