"""Ending a circle frees its volunteers: on the real broker, with the referrals, matching and circles workers,
a referral waiting for volunteers (each may sit in one circle) is proposed the moment the circle holding
them ends, and the ended circle's referral says ``circle_ended``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.common import Gender
from schemas.envelope import decode
from schemas.events.circles import CircleActivated, CircleEnded, circle_id_of
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed
from schemas.events.referrals import SubmitReferral
from schemas.events.volunteers import ChangeVolunteer
from schemas.topics import CIRCLES_EVENTS, EVENT_TYPES, MATCHING_EVENTS, REFERRALS_STATE, TOPICS, VOLUNTEERS
from services.referrals.domain.referral import ReferralEntry, referral_id_for
from services.runtime.kafka import create_topics
from tests.kafka_helpers import consume, consume_all
from tests.processes import ServiceProcess, read_sealed_table, run_cli, sealing_publisher, service_env
from tests.samples import submission, volunteer_record

pytestmark = pytest.mark.integration
POOL = ["end-vol-0", "end-vol-1", "end-vol-2", "end-vol-3"]


async def register_pool(env: dict[str, str], count: int = len(POOL)) -> None:
    """``count`` volunteers, each able to sit in one circle."""
    async with sealing_publisher(env, "/circles/matching/cli") as publisher:
        for i, volunteer_id in enumerate(f"end-vol-{n}" for n in range(count)):
            record = volunteer_record(
                volunteer_id,
                gender=Gender.MALE if i % 2 else Gender.FEMALE,
                max_circles=1,
                experienced=i == 0,
                dbs_checked_on=date(2026, 1, 1),
                trained_on=date(2026, 2, 1),
                last_supervised_on=datetime.now(UTC).date(),
            )
            command = ChangeVolunteer(
                volunteer_id=volunteer_id,
                change="registered",
                registration=record,
                requested_by="coordinator",
            )
            await publisher.publish(command, publisher.envelope(command, f"volunteer-{volunteer_id}"))


async def submit(env: dict[str, str], reference: str) -> uuid.UUID:
    body = submission(agency_reference=reference)
    referral_id = referral_id_for("mappa-humberside", reference)
    command = SubmitReferral(
        referral_id=referral_id,
        agency_id="mappa-humberside",
        submission=body,
        fingerprint=body.fingerprint(),
        received_at=datetime.now(UTC),
    )
    async with sealing_publisher(env, "/tests/agency") as publisher:
        await publisher.publish(command, publisher.envelope(command, f"corr-{reference}"))
    return referral_id


def wait(what: str, found: Callable[[], Any], seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := found()):
        assert time.monotonic() < deadline, f"no {what} within {seconds}s"
        time.sleep(0.5)
    return result


def test_an_ended_circle_frees_its_volunteers_and_the_waiting_referral_is_proposed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    env = service_env(kafka_bootstrap, prefix, tmp_path)
    processes = [
        ServiceProcess(name, env).start()
        for name in ("referrals-worker", "matching-worker", "circles-worker")
    ]

    def events(topic: str) -> list[Any]:
        records = asyncio.run(consume_all(kafka_bootstrap, prefix + topic))
        return [decode(r.value, r.headers, EVENT_TYPES)[1] for r in records]

    try:
        for process in processes:
            process.wait_for_log("worker_ready")
        asyncio.run(register_pool(env))
        asyncio.run(consume(kafka_bootstrap, prefix + VOLUNTEERS.name, len(POOL), seconds=60))
        first = asyncio.run(submit(env, "END-1"))
        proposal = wait(
            "proposal", lambda: [e for e in events(MATCHING_EVENTS.name) if isinstance(e, MatchProposed)]
        )[0]
        waiting = asyncio.run(submit(env, "END-2"))
        wait(
            "deferral",
            lambda: [
                e
                for e in events(MATCHING_EVENTS.name)
                if isinstance(e, MatchDeferred) and e.referral_id == waiting
            ],
        )
        run_cli(env, "proposal", "accept", str(proposal.proposal_id))
        (formed,) = wait(
            "circle formed", lambda: [e for e in events(MATCHING_EVENTS.name) if isinstance(e, CircleFormed)]
        )
        wait(
            "circle activated",
            lambda: [e for e in events(CIRCLES_EVENTS.name) if isinstance(e, CircleActivated)],
        )
        volunteers = json.loads(run_cli(env, "volunteer", "list", "--json").stdout)
        assert all(not v["matchable"] and "at_circle_limit" in v["not_matchable_because"] for v in volunteers)

        ended = run_cli(env, "circle", "end", circle_id_of(first), "--outcome", "completed", "--json").stdout
        assert json.loads(ended)["status"] == "ended"
        (end,) = wait(
            "circle ended", lambda: [e for e in events(CIRCLES_EVENTS.name) if isinstance(e, CircleEnded)]
        )
        assert end.volunteer_ids == formed.volunteer_ids
        proposed = wait(
            "the waiting referral's proposal",
            lambda: [
                e
                for e in events(MATCHING_EVENTS.name)
                if isinstance(e, MatchProposed) and e.referral_id == waiting
            ],
        )
        assert {v.volunteer_id for v in proposed[0].volunteers} == set(end.volunteer_ids)

        def ended_status() -> bool:
            state = asyncio.run(read_sealed_table(env, REFERRALS_STATE.name, ReferralEntry))
            record = state[str(first)].record
            return record is not None and record.status.value == "circle_ended"

        wait("status circle_ended", ended_status)
    finally:
        for process in processes:
            process.stop()
