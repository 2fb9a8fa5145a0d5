"""Fault tests: the whole pipeline under a steady load of referrals over HTTP, while

* every process is SIGKILLed in turn and started again (each waits until it is ready before the next); the
  load runs until referrals have been taken after the last restart, however long the restarts take, so
  every kill lands under load;
* the broker itself (a broker of its own: the session's broker is shared by every test) is SIGKILLed and
  started at once (it recovers its logs), then stopped for longer than the producers' request timeout and
  started again on the same ports and data; the processes are supervised as ``circles dev up`` does, so a
  worker that stops on an infrastructure error starts again, but only so often (a crash loop fails).

Afterwards everything is counted (``tests.pipeline.Audit``): no referral lost, none submitted, decided or
proposed twice, each message delivered once by its event id (repeats only within the bound a killed sender
allows), the coordinator's state right, and every consumer group back to lag 0.
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
RECOVERY_S = 240
"""How long the broker may take to start after a SIGKILL: it recovers every partition's unflushed log first
(on a loaded 2-core machine that took longer than the 90 s a clean start is given)."""
"""How long the broker is away: longer than the producers' ``request_timeout_ms`` (30 s)."""
KILL_ORDER = (
    "referrals-api",
    "referrals-worker",
    "matching-worker",
    "matching-api",
    "notifications-worker",
    "coordinator-worker",
    "circles-worker",
    "coordinator-web",
)


def test_sigkill_of_each_process_in_turn_under_load_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    most, rate, every = 480, 2.0, 6
    pipeline = Pipeline(kafka_bootstrap, tmp_path)
    killed_at: dict[str, int] = {}
    try:
        pipeline.start(volunteers=most * 4)
        load = SteadyLoad(pipeline.partner_urls(), pipeline.api_key, most, rate, "KILL").start()
        started = time.monotonic()
        for kind in KILL_ORDER:
            assert load.running(), f"the load ended before the {kind} kill (raise `most`): {killed_at}"
            load.wait_accepted(len(load.accepted) + every)  # taken since the last restart: the load flows
            (member,) = pipeline.of_kind(kind)
            killed_at[kind] = len(load.accepted)
            member.process.kill()
            member.start()
            member.wait_ready()
        load.wait_accepted(len(load.accepted) + every)  # and after the last restart
        load.finish()
        accepted = load.join()
        referrals = len(accepted)
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


def test_broker_sigkill_and_restart_under_load_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    most, rate, step = 400, 5.0, 50
    broker = local_kafka().LocalKafka(data_dir=tmp_path / "kafka")
    bootstrap = broker.start()
    pipeline = Pipeline(bootstrap, tmp_path / "data")
    try:
        pipeline.start(volunteers=most * 4, web=False)
        pipeline.supervise()
        load = SteadyLoad(  # an agency sends again until taken, through the broker's recovery and outage
            pipeline.partner_urls(), pipeline.api_key, most, rate, "BROKER", give_up_s=RECOVERY_S + 60
        ).start()
        started = time.monotonic()
        load.wait_accepted(step)
        at_kill = len(load.accepted)
        broker.kill()  # SIGKILL: no controlled shutdown, unflushed log tails, recovery at the next start
        assert broker.start(timeout=RECOVERY_S) == bootstrap, "the broker came back on other ports"
        load.wait_accepted(at_kill + step)  # taken again after the crash, and the load goes on
        assert load.running(), "the load ended before the second fault (raise `most`)"
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
        load.wait_accepted(len(load.accepted) + step // 5)  # taken again after the outage
        load.finish()  # the load lasts as long as the faults take, however slow the machine
        accepted = load.join()
        referrals = len(accepted)
        pipeline.wait_until_settled(referrals)
        seconds = time.monotonic() - started
        audit = pipeline.audit(accepted)
        # An API rides the outage out (503 until the broker is back); a worker may stop on an infrastructure
        # error, with a non-zero exit code, and is started again by its supervisor.
        apis = [(name, code) for name, code in pipeline.restarted if "worker" not in name]
        assert apis == [], f"an API exited while the broker was away: {apis}"
        assert all(code not in (0, None) for _, code in pipeline.restarted), pipeline.restarted
        assert pipeline.gave_up == [], f"crash loops: {pipeline.gave_up}"
        assert leaks(pipeline.logs()) == []
    finally:
        pipeline.stop()
        broker.stop()
    print(
        f"\nbroker SIGKILL and restart: {referrals} referrals at {rate:.0f}/s, killed after {at_kill}, "
        f"stopped after {at_stop} and back "
        f"{down:.1f}s later, settled after {seconds:.1f}s; {audit.summary()}; "
        f"client retries {dict(load.retries)}; workers restarted by the supervisor: {pipeline.restarted}"
    )
