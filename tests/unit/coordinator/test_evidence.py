"""The compliance pack: its files, rows and summary from hand-made histories."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from schemas.common import Outcome
from schemas.events.circles import CircleOutcome, ConcernLevel, ReviewRecorded, circle_id_of
from services.coordinator.domain.evidence import add_months, evidence_pack, review_rows
from services.coordinator.domain.report import Period
from services.coordinator.domain.scheme_return import CircleLife, SchemeHistory
from tests.samples import PERSONAL_SENTINELS
from tests.unit.coordinator.test_scheme_return import (
    Q1,
    TARGETS,
    acknowledged,
    activated,
    assessed,
    concern,
    ended,
    fact,
    formed,
    meeting,
    panel,
    rid,
    submitted,
    volunteer,
)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_months_add_to_the_last_day_of_a_short_month() -> None:
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 4, 1), 12) == date(2027, 4, 1)


def test_reviews_held_when_due_and_the_next_due_after_a_late_one() -> None:
    life = CircleLife(
        referral_id="r",
        circle_id="circle-r",
        formed_on=date(2026, 1, 10),
        reviews=[date(2026, 4, 5), date(2026, 8, 1)],
    )
    year = Period(start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert review_rows(life, year, 3) == [
        ("circle-r", "r", "2026-04-10", "2026-04-05", "yes"),
        ("circle-r", "r", "2026-07-05", "2026-08-01", "no"),  # late: the next is due 3 months after it
        ("circle-r", "r", "2026-11-01", "", "no"),
    ]
    # only the reviews due within the period, and none after the circle ended
    life.ended_on = date(2026, 7, 31)
    assert [r[2] for r in review_rows(life, Q1, 3)] == ["2026-04-10"]
    assert [r[2] for r in review_rows(life, Period(start=date(2026, 7, 1), end=date(2026, 12, 31)), 3)] == [
        "2026-07-05"
    ]


def test_the_pack_holds_every_file_ids_and_dates_only() -> None:
    history = SchemeHistory(
        events=[
            formed(1, "2026-05-01"),
            submitted(2, "2026-04-01"),
            assessed(2, "2026-04-02", Outcome.ELIGIBLE),
            assessed(3, "2026-07-02", Outcome.ELIGIBLE),  # after the period
            panel(1, "2026-05-10", 3, True),
        ],
        volunteers=[
            volunteer(
                "vol-ok",
                dbs_checked_on=date(2025, 1, 1),
                trained_on=date(2025, 2, 1),
                last_supervised_on=date(2026, 6, 20),
            ),
            volunteer(
                "vol-gap",
                dbs_checked_on=date(2023, 1, 1),
                trained_on=date(2025, 2, 1),
                last_supervised_on=date(2026, 4, 1),
            ),
        ],
    )
    files = evidence_pack(history, Q1, TARGETS)
    assert set(files) == {
        "volunteers.csv",
        "minutes.csv",
        "reviews.csv",
        "concerns.csv",
        "decisions.csv",
        "summary.md",
    }
    volunteers = {row[0]: row for row in rows(files["volunteers.csv"])[1:]}
    header = rows(files["volunteers.csv"])[0]
    gap = dict(zip(header, volunteers["vol-gap"], strict=True))
    assert gap["dbs_in_date"] == "no" and gap["days_dbs_lapsed"] == "181"  # lapsed 1 Jan 2026
    assert gap["supervision_due_on"] == "2026-05-27" and gap["days_supervision_overdue"] == "34"
    assert dict(zip(header, volunteers["vol-ok"], strict=True))["supervised_in_date"] == "yes"
    decisions = rows(files["decisions.csv"])
    assert decisions[0] == ["decided_at", "kind", "referral_id", "proposal_id", "outcome", "decided_by"]
    assert [(d[1], d[4], d[5]) for d in decisions[1:]] == [("eligibility", "eligible", "policy:2026.1")]
    reviews = rows(files["reviews.csv"])
    assert reviews[1:] == []  # formed 1 May: its first review is due 1 August
    summary = files["summary.md"]
    assert summary.startswith("# Compliance pack, 2026-04-01 to 2026-06-30")
    assert "| Volunteers with an enhanced DBS check in date | 1 of 2 (50%) | volunteers.csv |" in summary
    assert "MAPPA panels attended: 1 of 1" in summary
    assert len(summary.splitlines()) < 40
    for content in files.values():
        assert "Synthetic" not in content
        assert not any(sentinel in content for sentinel in PERSONAL_SENTINELS)


def test_minutes_reviews_and_concerns_of_the_circles_operating() -> None:
    raised = datetime(2026, 5, 1, 10, tzinfo=UTC)
    history = SchemeHistory(
        events=[
            activated(1, "2026-01-05"),
            meeting(1, 1, "2026-04-02", with_minutes=True),
            meeting(1, 2, "2026-05-02"),
            fact(
                ReviewRecorded,
                1,
                review_id=rid(3001),
                held_on=date(2026, 4, 1),
                next_review_due=date(2026, 7, 1),
            ),
            concern(1, 1, raised, ConcernLevel.URGENT),
            acknowledged(1, 1, raised, timedelta(hours=5), ConcernLevel.URGENT),
            activated(2, "2025-01-05"),  # ended before the period: none of its rows
            ended(2, "2026-01-31", CircleOutcome.COMPLETED),
        ],
        volunteers=[],
    )
    files = evidence_pack(history, Q1, TARGETS)
    minutes = rows(files["minutes.csv"])[1:]
    assert [(m[3], m[5]) for m in minutes] == [("2026-04-02", "on_time"), ("2026-05-02", "not_in")]
    assert {m[2] for m in minutes} == {str(rid(1))}
    assert rows(files["reviews.csv"])[1:] == [
        [circle_id_of(rid(1)), str(rid(1)), "2026-04-05", "2026-04-01", "yes"]
    ]
    concerns = rows(files["concerns.csv"])[1:]
    assert [(c[3], c[4], c[6], c[7]) for c in concerns] == [("urgent", "2026-05-01T11:00+01:00", "5.0", "no")]
    assert "| Minutes in on time | 1 of 2 (50%) | minutes.csv |" in files["summary.md"]
