"""Scale-out: two workers of every service (and two partner API instances) share the partitions; while
referrals flow, one of each is stopped and started again. Every referral still gets exactly one decision,
one proposal and one of each of its messages, and every group is back to lag 0 with both its workers.

The matching inbox is deliberately one partition (the pool is one allocation problem with a single writer),
so the second matching worker holds no inbox: it is a hot standby for it. The test stops the matching worker
that holds the inbox, and checks that the other one takes it over.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from services.processes import WORKERS
from tests.conftest import leaks
from tests.pipeline import SERVICE_OF, Member, Pipeline, SteadyLoad

pytestmark = [pytest.mark.integration, pytest.mark.fault]
REFERRALS = 160
RATE = 8.0
INBOX = "circles.matching.inbox.v1:0"


def assignments(member: Member) -> list[list[str]]:
    """Every assignment the worker logged, oldest first."""
    return [
        line["partitions"]
        for line in map(json.loads, filter(lambda s: s.startswith("{"), member.process.logs().splitlines()))
        if line.get("event") == "partitions_assigned"
    ]


def current(member: Member) -> list[str]:
    found = assignments(member)
    return found[-1] if found else []


def test_two_workers_per_service_one_of_each_stopped_and_started_under_load(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, tmp_path, workers_per_service=2, apis_per_service=2)
    try:
        pipeline.start(volunteers=REFERRALS * 4, web=False)
        for kind in WORKERS:
            pair = pipeline.of_kind(kind)
            assert all(current(member) for member in pair), f"{kind}: a worker without partitions"
        matching = pipeline.of_kind("matching-worker")
        holder = next(member for member in matching if INBOX in current(member))
        standby = next(member for member in matching if member is not holder)
        stopped = [holder] + [pipeline.of_kind(kind)[0] for kind in WORKERS if kind != "matching-worker"]
        stopped.append(pipeline.of_kind("referrals-api")[0])

        load = SteadyLoad(pipeline.partner_urls(), pipeline.api_key, REFERRALS, RATE).start()
        started = time.monotonic()
        load.wait_accepted(REFERRALS // 4)
        for member in stopped:
            member.process.stop()  # SIGTERM: a rolling restart, say
        load.wait_accepted(REFERRALS // 2)
        for member in stopped:
            member.start()
        for member in stopped:
            member.wait_ready()
        accepted = load.join()
        pipeline.wait_until_settled(REFERRALS)
        seconds = time.monotonic() - started
        audit = pipeline.audit(accepted)

        took_over = [INBOX in partitions for partitions in assignments(standby)]
        assert any(took_over), "the standby matching worker never took the inbox over"
        final = pipeline.status()
        for service in final.services:
            assert service.active_members == 2 and service.lag == 0, service
        shares = {m.name: len(current(m)) for m in pipeline.members if m.kind in WORKERS}
        assert all(shares.values()), f"a worker holds nothing after the restarts: {shares}"
        assert all(m.process.starts == 2 for m in stopped)
        assert leaks(pipeline.logs()) == []
    finally:
        pipeline.stop()
    print(
        f"\nscale-out: {REFERRALS} referrals at {RATE:.0f}/s in {seconds:.1f}s with two workers per service, "
        f"{', '.join(SERVICE_OF.get(m.kind, m.kind) for m in stopped)} each stopped and restarted; "
        f"{audit.summary()}; partitions held at the end: {shares}; client retries {dict(load.retries)}"
    )
