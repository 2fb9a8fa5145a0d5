"""Fault tests: the whole pipeline under a steady load of referrals over HTTP, while

* every process is SIGKILLed in turn and started again (each waits until it is ready before the next);
* the broker itself is stopped for longer than the producers' request timeout and started again on the
  same ports and data (a broker of its own: the session's broker is shared by every test); the processes
  are supervised as ``circles dev up`` does, so a worker that stops on an infrastructure error starts again.

Afterwards everything is counted (``tests.pipeline.Audit``): no referral lost, none decided or proposed
twice, each message delivered once by its event id, and every consumer group back to lag 0.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.dev.broker import local_kafka
from tests.conftest import leaks
from tests.pipeline import Pipeline, SteadyLoad, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]
AWAY_S = 40
"""How long the broker is away: longer than the producers' ``request_timeout_ms`` (30 s)."""
KILL_ORDER = (
    "referrals-api",
    "referrals-worker",
    "matching-worker",
    "matching-api",
    "notifications-worker",
    "coordinator-worker",
    "coordinator-web",
)


def test_sigkill_of_each_process_in_turn_under_load_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    referrals, rate, every = 240, 5.0, 25
    pipeline = Pipeline(kafka_bootstrap, tmp_path)
    killed_at: dict[str, int] = {}
    try:
        pipeline.start(volunteers=referrals * 4)
        load = SteadyLoad(pipeline.partner_urls(), pipeline.api_key, referrals, rate, "KILL").start()
        started = time.monotonic()
        for n, kind in enumerate(KILL_ORDER, start=1):
            load.wait_accepted(n * every)
            (member,) = pipeline.of_kind(kind)
            killed_at[kind] = len(load.accepted)
            member.process.kill()
            member.start()
            member.wait_ready()
        accepted = load.join()
        assert all(at < referrals for at in killed_at.values()), f"a kill came after the load: {killed_at}"
        pipeline.wait_until_settled(referrals)
        seconds = time.monotonic() - started
        audit = pipeline.audit(accepted)
        assert all(member.process.starts == 2 for member in pipeline.members)
        assert leaks(pipeline.logs()) == []
    finally:
        pipeline.stop()
    print(
        f"\nSIGKILL in turn: {referrals} referrals at {rate:.0f}/s, settled after {seconds:.1f}s; "
        f"killed at {killed_at} referrals taken; {audit.summary()}; client retries {dict(load.retries)}"
    )


def test_broker_restart_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    referrals, rate = 150, 5.0
    broker = local_kafka().LocalKafka(data_dir=tmp_path / "kafka")
    bootstrap = broker.start()
    pipeline = Pipeline(bootstrap, tmp_path / "data")
    try:
        pipeline.start(volunteers=referrals * 4, web=False)
        pipeline.supervise()
        load = SteadyLoad(pipeline.partner_urls(), pipeline.api_key, referrals, rate, "BROKER").start()
        started = time.monotonic()
        load.wait_accepted(referrals // 3)
        at_stop = len(load.accepted)
        stopping = time.monotonic()
        broker.stop()  # a controlled shutdown: SIGTERM, the broker closes its logs
        # The broker is away until the partner API has refused submissions (503) for it, and longer than the
        # producers' request timeout: batches expire while partitions have no leader, which left aiokafka's
        # idempotent producers refusing every later batch (OutOfOrderSequenceNumber) before they were renewed.
        wait_for(lambda: load.retries["503"] >= 3, 60, "submissions refused while the broker is away")
        time.sleep(max(0.0, stopping + AWAY_S - time.monotonic()))  # an outage of a set length
        assert broker.start() == bootstrap, "the broker came back on other ports"
        down = time.monotonic() - stopping
        accepted = load.join()
        pipeline.wait_until_settled(referrals)
        seconds = time.monotonic() - started
        audit = pipeline.audit(accepted)
        # An API rides the outage out (503 until the broker is back); a worker may stop on an infrastructure
        # error, with a non-zero exit code, and is started again by its supervisor.
        apis = [(name, code) for name, code in pipeline.restarted if "worker" not in name]
        assert apis == [], f"an API exited while the broker was away: {apis}"
        assert all(code not in (0, None) for _, code in pipeline.restarted), pipeline.restarted
        assert leaks(pipeline.logs()) == []
    finally:
        pipeline.stop()
        broker.stop()
    print(
        f"\nbroker restart: {referrals} referrals at {rate:.0f}/s, broker stopped after {at_stop} and back "
        f"{down:.1f}s later, settled after {seconds:.1f}s; {audit.summary()}; "
        f"client retries {dict(load.retries)}; workers restarted by the supervisor: {pipeline.restarted}"
    )
