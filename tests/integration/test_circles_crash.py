"""Crash test: SIGKILL of the circles worker while 600 meetings (with their minutes) and 30 urgent concerns
arrive for 30 circles. Afterwards every meeting and concern is in its circle once, and each has exactly one
fact (a record written again after the crash carries the same event id, so consumers see it once)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas.common import LocalAuthority
from schemas.envelope import decode
from schemas.events.circles import (
    CircleActivated,
    ConcernLevel,
    ConcernRaised,
    CoreMemberAttendance,
    MeetingRecorded,
    MinutesSubmitted,
    RaiseConcern,
    RecordMeeting,
)
from schemas.events.matching import CircleFormed
from schemas.topics import CIRCLES_COMMANDS, CIRCLES_EVENTS, CIRCLES_STATE, EVENT_TYPES, TOPICS
from services.circles.domain.circle import Circle
from services.runtime.kafka import create_topics, read_compacted
from tests.conftest import leaks
from tests.kafka_helpers import consume, consume_all
from tests.processes import ServiceProcess, sealing_publisher, service_env
from tests.samples import MINUTES_SENTINEL, SUMMARY_SENTINEL

pytestmark = [pytest.mark.integration, pytest.mark.fault]
CIRCLES = 30
MEETINGS_PER_CIRCLE = 20
KILL_AFTER_FACTS = 200
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def form_circles(env: dict[str, str], referrals: list[uuid.UUID]) -> None:
    async with sealing_publisher(env, "/circles/matching") as publisher:
        for referral in referrals:
            await publisher.codec.store_for(f"referral:{referral}").ensure(f"referral:{referral}")  # type: ignore[attr-defined]
            formed = CircleFormed(
                referral_id=referral,
                agency_id="mappa-humberside",
                circle_id=uuid.uuid4(),
                proposal_id=uuid.uuid4(),
                volunteer_ids=["vol-a", "vol-b", "vol-c", "vol-d"],
                local_authority=LocalAuthority.HULL,
                formed_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
                year=2025,
                circles_formed_in_year=1,
                yearly_target=8,
            )
            await publisher.publish(formed, publisher.envelope(formed, f"corr-{referral}"))


async def send_commands(
    env: dict[str, str], referrals: list[uuid.UUID]
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    meetings: set[uuid.UUID] = set()
    concerns: set[uuid.UUID] = set()
    async with sealing_publisher(env, "/circles/circles/cli") as publisher:
        futures = []
        for week in range(MEETINGS_PER_CIRCLE):
            for referral in referrals:
                command = RecordMeeting(
                    command_id=uuid.uuid4(),
                    referral_id=referral,
                    requested_by="cli:tester",
                    requested_at=NOW,
                    meeting_id=uuid.uuid4(),
                    held_on=date(2026, 1, 6 + week),
                    core_member_attendance=CoreMemberAttendance.ATTENDED,
                    volunteer_ids=["vol-a", "vol-b"],
                    minutes=f"{MINUTES_SENTINEL} {week}",
                )
                meetings.add(command.meeting_id)
                envelope = publisher.envelope(command, f"corr-{referral}", event_id=command.command_id)
                futures.append(await publisher.send(command, envelope))
        for referral in referrals:
            concern = RaiseConcern(
                command_id=uuid.uuid4(),
                referral_id=referral,
                requested_by="cli:tester",
                requested_at=NOW,
                concern_id=uuid.uuid4(),
                level=ConcernLevel.URGENT,
                summary=SUMMARY_SENTINEL,
            )
            concerns.add(concern.concern_id)
            envelope = publisher.envelope(concern, f"corr-{referral}", event_id=concern.command_id)
            futures.append(await publisher.send(concern, envelope))
        await asyncio.gather(*futures)
    return meetings, concerns


def test_sigkill_of_the_circles_worker_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    clock = tmp_path / "clock"
    clock.write_text(NOW.isoformat())
    env = service_env(kafka_bootstrap, prefix, tmp_path, CIRCLES_CLOCK=f"file:{clock}")
    worker = ServiceProcess("circles-worker", env).start()
    referrals = [uuid.uuid4() for _ in range(CIRCLES)]
    events_topic = prefix + CIRCLES_EVENTS.name
    try:
        worker.wait_for_log("worker_ready")
        asyncio.run(form_circles(env, referrals))
        asyncio.run(consume(kafka_bootstrap, events_topic, CIRCLES, seconds=60))
        meetings, concerns = asyncio.run(send_commands(env, referrals))
        asyncio.run(consume(kafka_bootstrap, events_topic, CIRCLES + KILL_AFTER_FACTS, seconds=120))
        worker.kill()  # mid-stream: some of the meetings are applied, not all
        at_kill = len(asyncio.run(consume_all(kafka_bootstrap, events_topic)))
        worker.start()
        expected = CIRCLES + 2 * len(meetings) + len(concerns)  # activated; recorded + minutes; raised
        deadline = time.monotonic() + 180
        while True:
            records = asyncio.run(consume_all(kafka_bootstrap, events_topic))
            facts = [decode(r.value, r.headers, EVENT_TYPES) for r in records]
            if len({envelope.id for envelope, _ in facts}) >= expected:
                break
            assert time.monotonic() < deadline, f"{len(facts)} facts of {expected}:\n{worker.tail()}"
            time.sleep(1)
        circles = asyncio.run(
            read_compacted(kafka_bootstrap, prefix + CIRCLES_STATE.name, Circle.model_validate_json)
        )
        dead = asyncio.run(consume_all(kafka_bootstrap, prefix + CIRCLES_COMMANDS.dlq))
    finally:
        worker.stop()

    assert at_kill < expected, "the worker was killed after it had finished: nothing was tested"
    assert dead == []
    by_meeting: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    minutes: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    by_concern: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    activated: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for envelope, event in facts:
        if isinstance(event, MeetingRecorded):
            by_meeting[event.meeting_id].add(envelope.id)
        elif isinstance(event, MinutesSubmitted):
            minutes[event.meeting_id].add(envelope.id)
        elif isinstance(event, ConcernRaised):
            by_concern[event.concern_id].add(envelope.id)
        elif isinstance(event, CircleActivated):
            activated[event.referral_id].add(envelope.id)
    assert set(by_meeting) == meetings == set(minutes), "a meeting was lost"
    assert set(by_concern) == concerns, "a concern was lost"
    assert set(activated) == set(referrals)
    for told in (by_meeting, minutes, by_concern, activated):
        assert all(len(ids) == 1 for ids in told.values()), "a command was applied twice"
    assert {str(r) for r in referrals} == set(circles)
    for circle in circles.values():
        assert len(circle.meetings) == MEETINGS_PER_CIRCLE
        assert len({m.meeting_id for m in circle.meetings}) == MEETINGS_PER_CIRCLE
        assert len(circle.concerns) == 1
        assert all(m.minutes and m.minutes.startswith("sealed:v1:") for m in circle.meetings)
    print(
        f"\nfacts at the kill: {at_kill}; records after: {len(facts)} ({len(facts) - expected} written again)"
    )
    assert leaks(worker.logs()) == []
