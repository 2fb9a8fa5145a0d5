"""The commissioner's return on the real broker: panels, mentoring sessions and audits recorded with the
CLI, volunteers through the matching worker, referral and circle facts published as their services
publish them; the coordinator worker archives the facts; `circles report return` gives the expected
figures as JSON and CSV, the same after the worker restarts and whatever day the CLI's clock says; the
compliance pack is written; bad input gets one line and its exit status."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.common import LocalAuthority, Outcome
from schemas.envelope import Event
from schemas.events.circles import (
    CircleActivated,
    CircleEnded,
    CircleOutcome,
    ConcernAcknowledged,
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
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted
from schemas.partner_api import Decision
from schemas.topics import TOPICS
from services.coordinator.domain.targets import load_targets
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.processes import ServiceProcess, run_cli, service_env
from tests.samples import profile

pytestmark = pytest.mark.integration

TARGETS = load_targets()
TODAY = datetime.now(UTC).date()
START, END = TARGETS.contract_year(TODAY)  # the contract year holding today, so volunteers added now count


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def moment(offset: int, hour: int = 12) -> datetime:
    return datetime.combine(day(offset), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=0xABC000 + n)


@dataclass
class Stack:
    env: dict[str, str]
    clock: Path
    workers: list[ServiceProcess]

    def cli(self, *args: str, check: bool = True) -> Any:
        return run_cli(self.env, *args, check=check)

    def publish(self, events: list[Event]) -> None:
        async def send() -> None:
            async with Publisher(
                self.env["KAFKA_BOOTSTRAP_SERVERS"],
                "/tests/services",
                prefix=self.env["CIRCLES_TOPIC_PREFIX"],
            ) as publisher:
                for event in events:
                    await publisher.publish(event, publisher.envelope(event, "corr-return"))

        asyncio.run(send())

    def the_return(self) -> dict[str, Any]:
        result = self.cli("report", "return", "--from", str(START), "--to", str(END), "--json")
        figures: dict[str, Any] = json.loads(result.stdout)
        return figures


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    data = tmp_path_factory.mktemp("scheme-return")
    clock = data / "clock"
    clock.write_text(datetime.combine(END, datetime.min.time(), tzinfo=UTC).replace(hour=12).isoformat())
    env = service_env(kafka_bootstrap, prefix, data, CIRCLES_CLOCK=f"file:{clock}")
    workers = [ServiceProcess(name, env).start() for name in ("matching-worker", "coordinator-worker")]
    try:
        for worker in workers:
            worker.wait_for_log("worker_ready", seconds=120)
        yield Stack(env, clock, workers)
    finally:
        for worker in workers:
            worker.stop()
    assert leaks("".join(worker.logs() for worker in workers)) == []


def referral_facts() -> list[Event]:
    def submitted(n: int, agency: str, offset: int) -> ReferralSubmitted:
        return ReferralSubmitted(
            referral_id=rid(n),
            agency_id=agency,
            agency_reference=f"RET-{n}",
            version=1,
            submitted_at=moment(offset),
            profile=profile(),
            detail_url="http://partners.test/v1/referrals",
        )

    def assessed(n: int, agency: str, offset: int, outcome: Outcome) -> ReferralAssessed:
        decision = Decision(
            outcome=outcome, reasons=[], policy_version="2026.1", decided_at=moment(offset, 13)
        )
        return ReferralAssessed(
            referral_id=rid(n),
            agency_id=agency,
            agency_reference=f"RET-{n}",
            version=1,
            decision=decision,
            profile=profile(),
        )

    return [
        submitted(1, "mappa-humberside", 2),
        assessed(1, "mappa-humberside", 3, Outcome.ELIGIBLE),
        submitted(2, "probation-hull", 5),
        assessed(2, "probation-hull", 6, Outcome.INELIGIBLE),
        submitted(3, "mappa-humberside", 8),
    ]


def circle_life() -> list[Event]:
    """Referral 1's circle, as matching and the circles service tell it; and a circle from the year
    before that is still active across the period's start (referral 9), ended early inside it."""
    one = {"referral_id": rid(1), "circle_id": circle_id_of(rid(1)), "agency_id": "mappa-humberside"}
    nine = {"referral_id": rid(9), "circle_id": circle_id_of(rid(9)), "agency_id": "probation-hull"}
    meeting_1, meeting_2, concern = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    return [
        CircleFormed(
            referral_id=rid(1),
            agency_id="mappa-humberside",
            circle_id=uuid.uuid4(),
            proposal_id=uuid.uuid4(),
            volunteer_ids=["ret-a", "ret-b"],
            local_authority=LocalAuthority.HULL,
            formed_at=moment(20),
            year=START.year,
            circles_formed_in_year=1,
            yearly_target=8,
        ),
        CircleActivated(
            **one,
            formed_on=day(20),
            volunteer_ids=["ret-a", "ret-b"],
            local_authority=LocalAuthority.HULL,
            planned_end_on=day(385),
            next_review_due=day(112),
            activated_at=moment(20),
        ),
        MeetingRecorded(
            **one,
            meeting_id=meeting_1,
            held_on=day(27),
            core_member_attendance=CoreMemberAttendance.ATTENDED,
            volunteer_ids=["ret-a"],
            minutes_due_at=moment(29, 0),
            minutes_received=False,
            recorded_at=moment(27),
        ),
        MinutesSubmitted(**one, meeting_id=meeting_1, submitted_at=moment(28), on_time=True),
        MeetingRecorded(
            **one,
            meeting_id=meeting_2,
            held_on=day(34),
            core_member_attendance=CoreMemberAttendance.LATE,
            volunteer_ids=["ret-b"],
            minutes_due_at=moment(36, 0),
            minutes_received=False,
            recorded_at=moment(34),
        ),
        MinutesOverdue(
            **one,
            meeting_id=meeting_2,
            held_on=day(34),
            minutes_due_at=moment(36, 0),
            noticed_at=moment(36, 1),
        ),
        ConcernRaised(**one, concern_id=concern, level=ConcernLevel.URGENT, raised_at=moment(40, 9)),
        ConcernAcknowledged(
            **one,
            concern_id=concern,
            level=ConcernLevel.URGENT,
            acknowledged_at=moment(40, 11),
            acknowledged_by="mappa-humberside",
            raised_at=moment(40, 9),
        ),
        ReviewRecorded(**one, review_id=uuid.uuid4(), held_on=day(100), next_review_due=day(192)),
        CircleActivated(
            **nine,
            formed_on=START - timedelta(days=200),
            volunteer_ids=["ret-c"],
            local_authority=LocalAuthority.HULL,
            planned_end_on=START + timedelta(days=165),
            next_review_due=START,
            activated_at=datetime.combine(START - timedelta(days=200), datetime.min.time(), tzinfo=UTC),
        ),
        CircleEnded(
            **nine,
            outcome=CircleOutcome.ENDED_EARLY,
            reason=EndReason.MOVED_AWAY,
            ended_on=day(50),
            volunteer_ids=["ret-c"],
            ended_at=moment(50),
        ),
    ]


def expected(supervised_in_date: int) -> dict[str, Any]:
    days = (END - START).days + 1
    return {
        "period": {"from": str(START), "to": str(END)},
        "targets_version": TARGETS.version,
        "circles": {
            "operating": 2,
            "formed": 1,
            "ended": {"completed": 0, "ended_early": 1},
            "target_per_year": 8,
            "target_pro_rata": round(8 * days / days, 2),
            "on_track": False,
        },
        "mappa_panels": {
            "requested": 3,
            "attended": 2,
            "by_level": {"2": {"requested": 1, "attended": 1}, "3": {"requested": 2, "attended": 1}},
        },
        "mentoring": {"service_users": 2, "sessions": 3, "minutes": 150},
        "audits": {"held": 2, "met": 1, "with_actions": 1},
        "meetings": {"held": 2, "minutes_on_time": 1, "minutes_late": 1},
        "concerns": {"raised": 1, "urgent": 1, "acknowledged_within_target": 1},
        "volunteers": {"active": 2, "dbs_in_date": 2, "trained": 2, "supervised_in_date": supervised_in_date},
        "referrals": {
            "received": 3,
            "by_agency": {"mappa-humberside": 2, "probation-hull": 1},
            "by_outcome": {
                "eligible": 1,
                "ineligible": 1,
                "needs_information": 0,
                "deferred": 0,
                "withdrawn": 0,
                "undecided": 1,
            },
        },
        "funding": {
            "total": 50668.99,
            "opcc": 25841.18,
            "probation": 24827.81,
            "cost_per_operating_circle": 25334.5,
        },
    }


def wait_for(stack: Stack, what: Any, seconds: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        figures = stack.the_return()
        if what(figures) or time.monotonic() > deadline:
            return figures
        time.sleep(1.0)


def flatten(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, (*path, key))
    else:
        yield path, value


def test_records_a_circles_life_and_the_return_gives_the_expected_figures(
    stack: Stack, tmp_path: Path
) -> None:
    stack.publish([*referral_facts(), *circle_life()])
    # the coordinator has the referrals before a panel about one of them is recorded
    wait_for(stack, lambda f: f["referrals"]["received"] == 3 and f["circles"]["operating"] == 2)
    r1, r2 = str(rid(1)), str(rid(2))
    for args in (
        ["mappa", "panel", "--referral", r1, "--level", "2", "--date", str(day(10)), "--attended", "yes"],
        ["mappa", "panel", "--referral", r1, "--level", "3", "--date", str(day(45)), "--attended", "no"],
        ["mappa", "panel", "--referral", r2, "--level", "3", "--date", str(day(60)), "--attended", "yes"],
        ["mentoring", "session", "--referral", r1, "--date", str(day(30)), "--minutes", "60"],
        ["mentoring", "session", "--referral", r1, "--date", str(day(31)), "--minutes", "45"],
        ["mentoring", "session", "--referral", r2, "--date", str(day(32)), "--minutes", "45"],
        ["audit", "record", "--date", str(day(70)), "--area", "supervision", "--result", "met"],
        [
            "audit",
            "record",
            "--date",
            str(day(71)),
            "--area",
            "minutes",
            "--result",
            "actions",
            "--actions",
            "2",
        ],
    ):
        recorded = json.loads(stack.cli(*args, "--json").stdout)
        assert recorded["kind"] in {"mappa_panel", "mentoring_session", "audit"}
    supervised_on = TODAY - timedelta(days=1)
    for volunteer_id in ("ret-a", "ret-b"):
        stack.cli(
            "volunteer", "add", volunteer_id, "--name", f"Synthetic {volunteer_id}", "--gender", "female",
            "--local-authority", "hull", "--postcode-district", "HU7",
        )  # fmt: skip
        stack.cli("volunteer", "vetted", volunteer_id, "--dbs-date", str(TODAY - timedelta(days=30)))
        stack.cli("volunteer", "trained", volunteer_id, "--date", str(TODAY - timedelta(days=30)))
        stack.cli("volunteer", "supervised", volunteer_id, "--date", str(supervised_on))
    in_date = 2 if supervised_on + timedelta(weeks=TARGETS.supervision_interval_weeks) >= END else 0
    want = expected(in_date)

    figures = wait_for(stack, lambda f: f == want)
    assert figures == want

    rows = list(
        csv.reader(
            io.StringIO(stack.cli("report", "return", "--from", str(START), "--to", str(END), "--csv").stdout)
        )
    )
    assert rows[0] == ["section", "figure", "value"]
    shown = {
        (path[0], ".".join(path[1:])): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        for path, v in flatten(want)
    }
    assert {(s, f): v for s, f, v in rows[1:]} == shown and len(rows) - 1 == len(shown)

    # a restart of the worker, and another day on the CLI's clock: the same return
    stack.workers[1].kill()
    stack.workers[1].start()
    stack.workers[1].wait_for_log("worker_ready", seconds=120, occurrences=2)
    assert stack.the_return() == want
    stack.clock.write_text((datetime.now(UTC) + timedelta(days=400)).isoformat())
    assert stack.the_return() == want

    pack = tmp_path / "pack"
    stack.cli("report", "evidence", "--from", str(START), "--to", str(END), "--out", str(pack))
    assert sorted(p.name for p in pack.iterdir()) == [
        "concerns.csv", "decisions.csv", "minutes.csv", "reviews.csv", "summary.md", "volunteers.csv",
    ]  # fmt: skip
    minutes = list(csv.DictReader((pack / "minutes.csv").open()))
    assert sorted(m["minutes"] for m in minutes) == ["on_time", "overdue"]
    concerns = list(csv.DictReader((pack / "concerns.csv").open()))
    assert [(c["level"], c["acknowledged_within_target"]) for c in concerns] == [("urgent", "yes")]
    assert "Synthetic" not in "".join(p.read_text() for p in pack.iterdir())


def test_bad_input_gets_one_line_and_its_exit_status(stack: Stack) -> None:
    known = str(rid(1))
    panel = ["mappa", "panel", "--referral", known, "--date"]
    cases: list[tuple[list[str], int, str]] = [
        (["report", "return", "--from", str(END), "--to", str(START)], 2, "is after --to"),
        ([*panel, str(START), "--level", "1", "--attended", "no"], 2, "--level"),
        ([*panel, "2999-01-01", "--level", "2", "--attended", "yes"], 1, "in the future"),
        (
            [*panel[:3], str(uuid.uuid4()), "--date", str(START), "--level", "2", "--attended", "no"],
            1,
            "no referral",
        ),
    ]
    for args, status, says in cases:
        result = stack.cli(*args, check=False)
        assert result.returncode == status, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], result.stderr
