"""Crash test: SIGKILL of the matching worker while 200 eligible referrals arrive. Afterwards no referral has
two open proposals, no volunteer is in two, and none is forgotten: each is proposed or waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas.common import Gender, LocalAuthority
from schemas.envelope import decode
from schemas.events.matching import MatchDeferred, MatchProposed
from schemas.events.referrals import SubmitReferral
from schemas.events.volunteers import ChangeVolunteer
from schemas.topics import EVENT_TYPES, MATCHING_CASES, MATCHING_EVENTS, REFERRALS_STATE, TOPICS, VOLUNTEERS
from services.matching.domain.cases import Case, CaseStatus
from services.referrals.domain.referral import ReferralEntry, referral_id_for
from services.runtime.kafka import create_topics, read_compacted
from tests.conftest import leaks
from tests.kafka_helpers import consume, consume_all
from tests.processes import ServiceProcess, read_sealed_table, sealing_publisher, service_env
from tests.samples import submission, volunteer_record

pytestmark = [pytest.mark.integration, pytest.mark.fault]
VOLUNTEERS_IN_POOL = 120
REFERRALS = 200
PACE_S = 0.05
"""Between submissions: the stream lasts about 10 s, so the kill falls inside it however fast matching is."""
KILL_AFTER_EVENTS = 60


async def register_pool(env: dict[str, str]) -> None:
    async with sealing_publisher(env, "/tests/coordinator") as publisher:
        for i in range(VOLUNTEERS_IN_POOL):
            record = volunteer_record(
                f"pool-{i:03d}",
                gender=Gender.MALE if i % 2 else Gender.FEMALE,
                local_authority=[LocalAuthority.HULL, LocalAuthority.EAST_RIDING][i % 2],
                max_circles=1,
                experienced=i % 5 == 0,
                dbs_checked_on=date(2026, 1, 1),
                trained_on=date(2026, 2, 1),
                last_supervised_on=date(2026, 11, 1),
            )
            command = ChangeVolunteer(
                volunteer_id=record.volunteer_id,
                change="registered",
                registration=record,
                requested_by="coordinator",
            )
            await publisher.send(command, publisher.envelope(command, "pool"))


async def submit_referrals(env: dict[str, str]) -> list[uuid.UUID]:
    ids = []
    async with sealing_publisher(env, "/tests/agency") as publisher:
        futures = []
        for i in range(REFERRALS):
            body = submission(
                agency_reference=f"CRASHM-{i:04d}", risk__level=["medium", "high", "very-high"][i % 3]
            )
            referral_id = referral_id_for("mappa-humberside", body.agency_reference)
            command = SubmitReferral(
                referral_id=referral_id,
                agency_id="mappa-humberside",
                submission=body,
                fingerprint=body.fingerprint(),
                received_at=datetime.now(UTC),
            )
            futures.append(await publisher.send(command, publisher.envelope(command, f"corr-{i}")))
            ids.append(referral_id)
            await asyncio.sleep(PACE_S)
        await asyncio.gather(*futures)
    return ids


def test_sigkill_of_the_matching_worker_mid_stream(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    env = service_env(kafka_bootstrap, prefix, tmp_path)
    referrals = ServiceProcess("referrals-worker", env).start()
    matching = ServiceProcess("matching-worker", env).start()
    try:
        referrals.wait_for_log("worker_ready")
        matching.wait_for_log("worker_ready")
        asyncio.run(register_pool(env))
        asyncio.run(consume(kafka_bootstrap, prefix + VOLUNTEERS.name, VOLUNTEERS_IN_POOL, seconds=60))
        with ThreadPoolExecutor(1) as stream:
            submitted = stream.submit(lambda: asyncio.run(submit_referrals(env)))
            asyncio.run(
                consume(kafka_bootstrap, prefix + MATCHING_EVENTS.name, KILL_AFTER_EVENTS, seconds=60)
            )
            matching.kill()  # mid-stream: some of the referrals have been matched or deferred, not all
            at_kill = len(asyncio.run(consume_all(kafka_bootstrap, prefix + MATCHING_EVENTS.name)))
            matching.start()
            ids = submitted.result()

        deadline = time.monotonic() + 120
        while True:
            cases = asyncio.run(
                read_compacted(kafka_bootstrap, prefix + MATCHING_CASES.name, Case.model_validate_json)
            )
            if len(cases) == REFERRALS and all(c.status is not CaseStatus.CLOSED for c in cases.values()):
                states = asyncio.run(read_sealed_table(env, REFERRALS_STATE.name, ReferralEntry))
                statuses = Counter(e.record.status.value for e in states.values() if e.record)
                if statuses["proposed"] + statuses["awaiting_volunteers"] == REFERRALS:
                    break
            assert time.monotonic() < deadline, f"{len(cases)} cases:\n{matching.tail()}"
            time.sleep(0.5)
    finally:
        matching.stop()
        referrals.stop()

    assert set(cases) == {str(i) for i in ids}, "a referral was forgotten"
    held: dict[str, uuid.UUID] = {}
    for case in cases.values():
        open_proposals = [p for p in case.proposals if p.status == "open"]
        assert len(open_proposals) <= 1, f"{case.referral_id} has two open proposals"
        assert (case.status is CaseStatus.PROPOSED) == bool(open_proposals)
        for proposal in open_proposals:
            for volunteer_id in proposal.volunteer_ids:
                assert volunteer_id not in held, f"{volunteer_id} is in two open proposals"
                held[volunteer_id] = proposal.proposal_id
    proposed_cases = [c for c in cases.values() if c.status is CaseStatus.PROPOSED]
    assert len(proposed_cases) == VOLUNTEERS_IN_POOL // 4  # every volunteer is held; the rest wait
    assert statuses == {
        "proposed": len(proposed_cases),
        "awaiting_volunteers": REFERRALS - len(proposed_cases),
    }

    announced: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    deferred: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    records = asyncio.run(consume_all(kafka_bootstrap, prefix + MATCHING_EVENTS.name))
    for record in records:
        envelope, event = decode(record.value, record.headers, EVENT_TYPES)
        if isinstance(event, MatchProposed):
            announced[event.referral_id].add(event.proposal_id)
        elif isinstance(event, MatchDeferred):
            deferred[event.referral_id].add(envelope.id)
    for case in proposed_cases:
        assert announced[case.referral_id] == {p.proposal_id for p in case.proposals}, (
            "a proposal twice, or unannounced"
        )
    assert all(len(ids) == 1 for ids in deferred.values()), "a referral was deferred twice"
    assert matching.starts == 2 and leaks(matching.logs() + referrals.logs()) == []
    distinct = sum(len(v) for v in announced.values()) + sum(len(v) for v in deferred.values())
    assert at_kill < REFERRALS, "the kill came after the stream had ended"
    print(
        f"\nmatching crash test: SIGKILL when {at_kill} matching events were out, of {REFERRALS} referrals; "
        f"afterwards {len(records)} records for {distinct} distinct events; "
        f"{len(proposed_cases)} proposed, {REFERRALS - len(proposed_cases)} waiting"
    )
