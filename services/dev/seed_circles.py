"""Sample circles for `circles dev up`: two of the sample referrals' proposals are accepted as if ten weeks
ago (the decision's time is what the circle's formation date is), so that the sample shows what a circle's
life looks like: one active circle with a meeting and its minutes, a meeting whose minutes are overdue and an
open concern; one circle ended early. Minutes and summaries are invented text, sealed like any others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from schemas.events.circles import (
    CircleCommand,
    CircleOutcome,
    ConcernLevel,
    CoreMemberAttendance,
    EndCircle,
    EndReason,
    RaiseConcern,
    RecordMeeting,
)
from schemas.events.matching import MatchDecided
from schemas.topics import CIRCLES_STATE
from services.circles.domain.circle import Circle
from services.protection.sealer import build_sealer
from services.runtime.kafka import Publisher, read_compacted
from services.runtime.settings import RuntimeSettings

FORMED_WEEKS_AGO = 10
WAIT_S = 90.0


async def seed_circles(settings: RuntimeSettings, matching: httpx.AsyncClient) -> list[str]:
    """Accept two open proposals as of ten weeks ago, then give the circles a life; returns what it did."""
    proposals = await _open_proposals(matching, 2)
    if len(proposals) < 2:
        return ["no sample circles: fewer than two proposals were made"]
    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    sealer = build_sealer(settings, ["decision", "referral"], client_id="circles-cli-keys")
    await sealer.start()
    try:
        async with Publisher(bootstrap, "/circles/dev/seed", prefix=prefix, sealer=sealer) as publisher:
            formed_at = datetime.now(UTC) - timedelta(weeks=FORMED_WEEKS_AGO)
            for proposal in proposals:
                decision = MatchDecided(
                    referral_id=proposal["referral_id"],
                    agency_id=proposal["agency_id"],
                    decision_id=uuid.uuid4(),
                    proposal_id=proposal["proposal_id"],
                    outcome="accept",
                    decided_by="coordinator",
                    decided_at=formed_at,
                )
                await publisher.publish(
                    decision, publisher.envelope(decision, "sample-circles", time=formed_at)
                )
            active, ended = await _circles(bootstrap, prefix, [str(p["referral_id"]) for p in proposals])
            for command in _life(active, ended):
                envelope = publisher.envelope(command, "sample-circles", event_id=command.command_id)
                await publisher.publish(command, envelope)
    finally:
        await sealer.stop()
    return [
        f"sample circles: {active.circle_id} active (meetings, minutes overdue, an open concern), "
        f"{ended.circle_id} ended early"
    ]


async def _open_proposals(matching: httpx.AsyncClient, wanted: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = await matching.get("/v1/proposals", params={"status": "open"})
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        if len(found) >= wanted or time.monotonic() > deadline:
            return found[:wanted]
        await asyncio.sleep(1)


async def _circles(bootstrap: str, prefix: str, referral_ids: list[str]) -> tuple[Circle, Circle]:
    deadline = time.monotonic() + WAIT_S
    while True:
        table = await read_compacted(bootstrap, prefix + CIRCLES_STATE.name, Circle.model_validate_json)
        if all(r in table for r in referral_ids):
            return table[referral_ids[0]], table[referral_ids[1]]
        if time.monotonic() > deadline:
            raise TimeoutError("the sample circles did not become active: is the circles worker running?")
        await asyncio.sleep(1)


def _life(active: Circle, ended: Circle) -> list[CircleCommand]:
    now = datetime.now(UTC)

    def base(circle: Circle) -> dict[str, Any]:
        return {
            "command_id": uuid.uuid4(),
            "referral_id": circle.referral_id,
            "requested_by": "coordinator:coordinator",
            "requested_at": now,
        }

    def meeting(circle: Circle, weeks: int, minutes: str | None) -> RecordMeeting:
        return RecordMeeting(
            **base(circle),
            meeting_id=uuid.uuid4(),
            held_on=circle.formed_on + timedelta(weeks=weeks),
            core_member_attendance=CoreMemberAttendance.ATTENDED if weeks % 2 else CoreMemberAttendance.LATE,
            volunteer_ids=circle.volunteer_ids[:3],
            minutes=minutes,
        )

    return [
        meeting(active, 1, "Invented minutes: first weekly meeting of a sample circle, introductions."),
        meeting(active, 2, "Invented minutes: second meeting, routines and goals discussed."),
        meeting(active, 9, None),  # its minutes are overdue
        RaiseConcern(
            **base(active),
            concern_id=uuid.uuid4(),
            level=ConcernLevel.ROUTINE,
            summary="Invented concern: the sample core member missed a probation appointment.",
            raised_by=active.volunteer_ids[0],
        ),
        meeting(ended, 1, "Invented minutes: first meeting of a sample circle that later ended early."),
        EndCircle(
            **base(ended),
            outcome=CircleOutcome.ENDED_EARLY,
            reason=EndReason.CORE_MEMBER_WITHDREW,
            ended_on=ended.formed_on + timedelta(weeks=3),
        ),
    ]
