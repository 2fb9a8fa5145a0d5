"""The circles service on the real broker: a circle's life through the ``circles circle`` commands, with the
clock moved (``CIRCLES_CLOCK=file:``) for minutes overdue and an urgent concern's escalation; refusals and
malformed commands dead-lettered with their reason; erasure of minutes and summaries."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.common import LocalAuthority
from schemas.envelope import Envelope, decode
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleEnded,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernRaised,
    MeetingRecorded,
    MinutesOverdue,
    MinutesSubmitted,
    RecordMeeting,
    ReviewRecorded,
    circle_id_of,
)
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralErased
from schemas.topics import CIRCLES_COMMANDS, CIRCLES_EVENTS, CIRCLES_STATE, EVENT_TYPES, TOPICS
from services.circles.agents import deadline_text
from services.runtime.kafka import create_topics, producer, read_compacted, send_record
from tests.kafka_helpers import consume_all
from tests.processes import ServiceProcess, run_cli, sealer_for, sealing_publisher, service_env
from tests.samples import MINUTES_SENTINEL, SUMMARY_SENTINEL

pytestmark = pytest.mark.integration
AGENCY = "mappa-humberside"
VOLUNTEERS = ["vol-a", "vol-b", "vol-c", "vol-d"]
FORMED_AT = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


class Circles:
    """One test's circles worker, its clock file and the CLI against them."""

    def __init__(self, bootstrap: str, tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        asyncio.run(create_topics(bootstrap, TOPICS, prefix=self.prefix))
        self.clock = tmp_path / "clock"
        self.set_clock(FORMED_AT)
        self.env = service_env(
            bootstrap,
            self.prefix,
            tmp_path,
            CIRCLES_CLOCK=f"file:{self.clock}",
            CIRCLES_DEADLINE_CHECK_INTERVAL_S="0.5",
            CIRCLES_LOG_LEVEL="debug",
        )
        self.worker = ServiceProcess("circles-worker", self.env)

    def set_clock(self, moment: datetime) -> None:
        self.clock.write_text(moment.isoformat())

    def checked_at(self, moment: datetime) -> None:
        """Wait until the deadline timer has looked twice at ``moment`` (the clock file's time): the first
        look's unit of work is committed, so what it found due has been published. The positive marker that
        a fact which has not come would have."""
        self.worker.wait_for_log(f'"upto": "{deadline_text(moment)}"', seconds=30, occurrences=2)

    def cli(self, *args: str, check: bool = True) -> Any:
        result = run_cli(self.env, "circle", *args, check=check)
        if not check:
            return result
        return json.loads(result.stdout) if "--json" in args else result.stdout

    def form(self, referral_id: uuid.UUID, formed_at: datetime = FORMED_AT) -> None:
        """What matching publishes when the coordinator accepts a proposal; the referral's data key exists
        (the referrals service made it at submission)."""
        event = CircleFormed(
            referral_id=referral_id,
            agency_id=AGENCY,
            circle_id=uuid.uuid4(),
            proposal_id=uuid.uuid4(),
            volunteer_ids=VOLUNTEERS,
            local_authority=LocalAuthority.HULL,
            formed_at=formed_at,
            year=2025,
            circles_formed_in_year=1,
            yearly_target=8,
        )

        async def go() -> None:
            async with sealing_publisher(self.env, "/circles/matching") as publisher:
                await publisher.codec.store_for(f"referral:{referral_id}").ensure(f"referral:{referral_id}")  # type: ignore[attr-defined]
                await publisher.publish(event, publisher.envelope(event, f"corr-{referral_id}"))

        asyncio.run(go())

    def facts(self) -> list[tuple[Envelope, Any]]:
        records = asyncio.run(consume_all(self.bootstrap, self.prefix + CIRCLES_EVENTS.name))
        return [decode(r.value, r.headers, EVENT_TYPES) for r in records]

    def wait_fact(self, kind: type, count: int = 1, seconds: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + seconds
        while True:
            found = [event for _, event in self.facts() if isinstance(event, kind)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"no {kind.__name__} within {seconds}s:\n{self.worker.tail()}"
            time.sleep(0.3)

    def dead_letters(self) -> list[Any]:
        return asyncio.run(consume_all(self.bootstrap, self.prefix + CIRCLES_COMMANDS.dlq))

    def state(self) -> dict[str, bytes]:
        return asyncio.run(read_compacted(self.bootstrap, self.prefix + CIRCLES_STATE.name, lambda raw: raw))


@pytest.fixture
def circles(kafka_bootstrap: str, tmp_path: Path) -> Any:
    service = Circles(kafka_bootstrap, tmp_path)
    service.worker.start()
    try:
        service.worker.wait_for_log("worker_ready")
        yield service
    finally:
        service.worker.stop()


def test_the_life_of_a_circle_through_the_command_line(circles: Circles, tmp_path: Path) -> None:
    referral = uuid.uuid4()
    circle_id = circle_id_of(referral)
    circles.form(referral)
    (activated,) = circles.wait_fact(CircleActivated)
    assert (
        activated.formed_on.isoformat() == "2026-03-02"
        and activated.next_review_due.isoformat() == "2026-06-02"
    )
    (listed,) = circles.cli("list", "--json")
    assert listed["circle_id"] == circle_id and listed["status"] == "active" and listed["outcome"] is None
    assert listed["volunteers"] == VOLUNTEERS and listed["meetings_held"] == 0

    # a meeting's date: on or after formation, not in the future
    circles.set_clock(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    before = circles.cli(
        "meeting", circle_id, "--date", "2026-03-01", "--core-member", "attended", check=False
    )
    assert before.returncode == 1 and "before the circle was formed" in before.stderr
    assert len(before.stderr.strip().splitlines()) == 1
    future = circles.cli("meeting", circle_id, "--date", "2026-03-10", "--core-member", "late", check=False)
    assert future.returncode == 1 and "in the future" in future.stderr
    usage = circles.cli("meeting", circle_id, "--date", "2026-03-09", "--core-member", "asleep", check=False)
    assert usage.returncode == 2
    unknown = circles.cli("show", circle_id_of(uuid.uuid4()), check=False)
    assert unknown.returncode == 1 and "no circle" in unknown.stderr

    # a meeting without minutes: due 48 hours after its day began; missing after that: overdue (once)
    recorded = circles.cli(
        "meeting",
        circle_id,
        "--date",
        "2026-03-09",
        "--core-member",
        "late",
        "--volunteers",
        "vol-a,vol-b",
        "--json",
    )
    assert recorded["minutes_due_at"].startswith("2026-03-11T00:00")
    (meeting,) = circles.wait_fact(MeetingRecorded)
    assert str(meeting.meeting_id) == recorded["meeting_id"] and not meeting.minutes_received
    circles.set_clock(datetime(2026, 3, 11, 0, 5, tzinfo=UTC))
    (overdue,) = circles.wait_fact(MinutesOverdue)
    assert str(overdue.meeting_id) == recorded["meeting_id"]
    shown = circles.cli("show", circle_id, "--json")
    assert shown["minutes_overdue"] == 1 and shown["meetings"][0]["minutes"] == "overdue"
    minutes_file = tmp_path / "minutes.txt"
    minutes_file.write_text(MINUTES_SENTINEL)
    late = circles.cli("minutes", recorded["meeting_id"], "--file", str(minutes_file), "--json")
    assert late["on_time"] is False
    (submitted,) = circles.wait_fact(MinutesSubmitted)
    assert submitted.on_time is False
    again = circles.cli("minutes", recorded["meeting_id"], "--file", str(minutes_file), check=False)
    assert again.returncode == 1 and "already has its minutes" in again.stderr
    with_minutes = ("--minutes-file", str(minutes_file), "--json")
    on_time = circles.cli(
        "meeting", circle_id, "--date", "2026-03-10", "--core-member", "attended", *with_minutes
    )
    assert on_time["minutes_received"] is True
    submissions = circles.wait_fact(MinutesSubmitted, 2)
    assert submissions[1].on_time is True

    # an urgent concern: open until the agency acknowledges; escalated after 4 hours unacknowledged
    summary_file = tmp_path / "summary.txt"
    summary_file.write_text(SUMMARY_SENTINEL)
    raised_at = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    circles.set_clock(raised_at)
    raised = circles.cli(
        "concern",
        circle_id,
        "--level",
        "urgent",
        "--summary-file",
        str(summary_file),
        "--raised-by",
        "vol-c",
        "--json",
    )
    (concern,) = circles.wait_fact(ConcernRaised)
    assert str(concern.concern_id) == raised[
        "concern_id"
    ] and concern.escalation_due_at == raised_at + timedelta(hours=4)
    circles.set_clock(raised_at + timedelta(hours=3, minutes=59))
    circles.checked_at(raised_at + timedelta(hours=3, minutes=59))
    assert not [e for _, e in circles.facts() if isinstance(e, ConcernEscalated)]
    circles.set_clock(raised_at + timedelta(hours=4, minutes=1))
    (escalated,) = circles.wait_fact(ConcernEscalated)
    assert escalated.concern_id == concern.concern_id
    shown = circles.cli("show", circle_id, "--json")
    assert shown["open_concerns"] == 1 and shown["concerns"][0]["escalated"] is True
    acknowledge(circles, referral, concern.concern_id)
    (acknowledged,) = circles.wait_fact(ConcernAcknowledged)
    assert acknowledged.acknowledged_by == AGENCY
    assert circles.cli("show", circle_id, "--json")["concerns"][0]["state"] == "acknowledged"

    # a review; an ending (ended early needs a reason)
    circles.set_clock(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    reviewed = circles.cli("review", circle_id, "--date", "2026-05-29", "--json")
    assert reviewed["next_review_due"] == "2026-08-29"
    (review,) = circles.wait_fact(ReviewRecorded)
    assert review.next_review_due.isoformat() == "2026-08-29"
    no_reason = circles.cli("end", circle_id, "--outcome", "ended_early", check=False)
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr
    bad_reason = circles.cli("end", circle_id, "--outcome", "ended_early", "--reason", "bored", check=False)
    assert bad_reason.returncode == 2
    ended = circles.cli("end", circle_id, "--outcome", "ended_early", "--reason", "moved_away", "--json")
    assert ended["ended_on"] == "2026-06-01"
    (end,) = circles.wait_fact(CircleEnded)
    assert end.reason == "moved_away" and end.volunteer_ids == VOLUNTEERS
    assert circles.cli("list", "--status", "active", "--json") == []
    (final,) = circles.cli("list", "--status", "ended", "--json")
    assert final["outcome"] == "ended_early" and final["meetings_held"] == 2 and final["open_concerns"] == 0
    after = circles.cli(
        "meeting", circle_id, "--date", "2026-06-01", "--core-member", "attended", check=False
    )
    assert after.returncode == 1 and "has ended" in after.stderr

    # each command once: one fact of each kind per command, nothing dead-lettered
    kinds = [type(e).__name__ for _, e in circles.facts()]
    assert kinds.count("MeetingRecorded") == 2 and kinds.count("CircleEnded") == 1
    assert circles.dead_letters() == []
    assert MINUTES_SENTINEL not in circles.worker.logs() and SUMMARY_SENTINEL not in circles.worker.logs()
    for _, event in circles.facts():  # facts never carry minutes or summaries
        assert (
            MINUTES_SENTINEL not in event.model_dump_json()
            and SUMMARY_SENTINEL not in event.model_dump_json()
        )


def acknowledge(
    circles: Circles, referral: uuid.UUID, concern_id: uuid.UUID, agency: str = AGENCY
) -> uuid.UUID:
    """What the partner API writes when the agency acknowledges a concern."""
    command = AcknowledgeConcern(
        command_id=uuid.uuid4(),
        referral_id=referral,
        requested_by=f"agency:{agency}",
        requested_at=datetime.fromisoformat(circles.clock.read_text()),
        concern_id=concern_id,
        agency_id=agency,
        note="passed to the offender manager",
    )

    async def go() -> None:
        async with sealing_publisher(circles.env, "/circles/referrals/api") as publisher:
            await publisher.publish(command, publisher.envelope(command, "ack", event_id=command.command_id))

    asyncio.run(go())
    return command.command_id


def test_refused_and_malformed_commands_are_dead_lettered_with_their_reason(circles: Circles) -> None:
    referral = uuid.uuid4()
    circles.form(referral)
    circles.wait_fact(CircleActivated)
    circles.set_clock(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    raised = circles.cli(
        "concern", circle_id_of(referral), "--level", "routine", "--summary-file", "/dev/null", check=False
    )
    assert raised.returncode == 1 and "is empty" in raised.stderr
    stranger = uuid.uuid4()
    meeting = RecordMeeting(
        command_id=uuid.uuid4(),
        referral_id=stranger,
        requested_by="cli:tester",
        requested_at=datetime(2026, 3, 9, 18, 0, tzinfo=UTC),
        meeting_id=uuid.uuid4(),
        held_on=datetime(2026, 3, 9).date(),
        core_member_attendance="attended",
    )
    concern_of_other = uuid.uuid4()

    async def send() -> None:
        async with sealing_publisher(circles.env, "/tests") as publisher:
            await publisher.publish(meeting, publisher.envelope(meeting, "x", event_id=meeting.command_id))
        topic = circles.prefix + CIRCLES_COMMANDS.name
        headers = [("ce_id", str(uuid.uuid4()).encode()), ("ce_type", b"circles.circle.record-meeting.v1")]
        kafka = producer(circles.bootstrap, client_id="tests-malformed")
        await kafka.start()
        try:
            await (await send_record(kafka, topic, b"{not json", key=str(referral).encode(), headers=headers))
        finally:
            await kafka.stop()

    asyncio.run(send())
    acknowledge(circles, referral, concern_of_other, agency="another-agency")
    deadline = time.monotonic() + 30
    while len(letters := circles.dead_letters()) < 3:
        assert time.monotonic() < deadline, circles.worker.tail()
        time.sleep(0.3)
    errors = sorted(dict(r.headers)["dlq_error"].decode() for r in letters)
    assert any(f"UnknownCircle: no circle circle-{stranger}" in e for e in errors), errors
    assert any("CloudEvents headers invalid" in e or "invalid" in e for e in errors), errors
    assert any(f"no concern {concern_of_other} of agency another-agency" in e for e in errors), errors
    assert circles.worker.alive()


def test_erasure_leaves_no_minutes_or_summaries_and_refuses_what_follows(
    circles: Circles, tmp_path: Path
) -> None:
    referral = uuid.uuid4()
    circle_id = circle_id_of(referral)
    circles.form(referral)
    circles.wait_fact(CircleActivated)
    circles.set_clock(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    text = tmp_path / "text.txt"
    text.write_text(MINUTES_SENTINEL)
    circles.cli(
        "meeting", circle_id, "--date", "2026-03-09", "--core-member", "absent", "--minutes-file", str(text)
    )
    text.write_text(SUMMARY_SENTINEL)
    circles.cli("concern", circle_id, "--level", "urgent", "--summary-file", str(text))
    circles.wait_fact(ConcernRaised)
    stored = circles.state()[str(referral)]
    assert b"sealed:v1:" in stored and MINUTES_SENTINEL.encode() not in stored  # sealed at rest

    async def erase() -> None:  # what the referrals worker does: destroy the key, then tell everyone
        sealer = sealer_for(circles.env, ["referral"])
        await sealer.start()
        try:
            assert await sealer.destroy(f"referral:{referral}") == 1
        finally:
            await sealer.stop()
        event = ReferralErased(
            referral_id=referral,
            agency_id=AGENCY,
            agency_reference="MAPPA-ERASE-1",
            erased_at=datetime(2026, 3, 10, tzinfo=UTC),
            reason="request",
            requested_by="cli:tester",
        )
        async with sealing_publisher(circles.env, "/circles/referrals") as publisher:
            await publisher.publish(event, publisher.envelope(event, "erase"))

    asyncio.run(erase())
    deadline = time.monotonic() + 30
    while b"sealed:v1:" in circles.state()[str(referral)]:
        assert time.monotonic() < deadline, circles.worker.tail()
        time.sleep(0.3)
    assert b'"erased_at"' in circles.state()[str(referral)]
    shown = circles.cli("show", circle_id, check=False)
    assert shown.returncode == 1 and "erased" in shown.stderr
    assert circles.cli("list", "--json") == []
    circles.set_clock(
        datetime(2026, 3, 12, tzinfo=UTC)
    )  # past the escalation: an erased circle tells nothing
    circles.checked_at(datetime(2026, 3, 12, tzinfo=UTC))
    assert not [e for _, e in circles.facts() if isinstance(e, ConcernEscalated)]
    assert circles.worker.alive()
