"""Service levels and the daily digest, with the worker's clock read from a file the test moves: a
referral waiting past a service level is escalated to the coordinator once, and the digest goes out once a
working day, also across a restart of the worker and after the broker was away during a digest."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.common import Outcome
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted
from schemas.partner_api import Decision
from schemas.topics import TOPICS
from services.dev.broker import local_kafka
from services.runtime.kafka import Publisher, create_topics
from tests.integration.test_faults import AWAY_S
from tests.notification_sinks import SmtpSink, wait_until
from tests.processes import ServiceProcess, run_cli, service_env
from tests.samples import sample

pytestmark = pytest.mark.integration
COORDINATOR = "coordinator@circles.example.org"
SUBMITTED = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # a Tuesday, before the digest's 08:00


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


async def publish_referral_events(bootstrap: str, prefix: str) -> tuple[str, str]:
    waiting = sample(ReferralSubmitted).model_copy(
        update={"referral_id": uuid.uuid4(), "agency_reference": "SLA-ACK-1", "submitted_at": SUBMITTED}
    )
    eligible = waiting.model_copy(update={"referral_id": uuid.uuid4(), "agency_reference": "SLA-DEC-1"})
    decision = Decision(outcome=Outcome.ELIGIBLE, reasons=[], policy_version="t", decided_at=SUBMITTED)
    assessed = sample(ReferralAssessed).model_copy(
        update={"referral_id": eligible.referral_id, "agency_reference": "SLA-DEC-1", "decision": decision}
    )
    async with Publisher(bootstrap, "/circles/referrals", prefix=prefix) as publisher:
        for event in (waiting, eligible, assessed):
            await publisher.publish(
                event, publisher.envelope(event, correlation_id="sla-test", time=SUBMITTED)
            )
    return str(waiting.referral_id), str(eligible.referral_id)


def test_overdue_referrals_are_escalated_once_and_the_digest_sent_once_a_day(
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    clock = tmp_path / "now"
    clock.write_text(SUBMITTED.isoformat())
    env = service_env(
        kafka_bootstrap,
        prefix,
        tmp_path,
        CIRCLES_CLOCK=f"file:{clock}",
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
        CIRCLES_SCHEDULE_INTERVAL_S="0.3",
        CIRCLES_LOG_LEVEL="debug",
    )
    run_cli(
        env,
        "agency",
        "add",
        "mappa-humberside",
        "--name",
        "MAPPA",
        "--contact-email",
        "mappa@agencies.example.org",
    )
    worker = ServiceProcess("notifications-worker", env).start()

    def coordinator(template: str) -> list[str]:
        return [m.text() for m in smtp.received(to=COORDINATOR, template=template)]

    try:
        worker.wait_for_log("worker_ready")
        waiting, eligible = asyncio.run(publish_referral_events(kafka_bootstrap, prefix))
        wait_until(lambda: len(smtp.received(to="mappa@agencies.example.org")) == 3, what="agency messages")
        assert coordinator("sla_escalation") == [] and coordinator("daily_digest") == []

        clock.write_text("2026-11-25T09:00:00+00:00")  # a working day later, after 08:00
        wait_until(
            lambda: len(coordinator("sla_escalation")) == 1 and len(coordinator("daily_digest")) == 1,
            seconds=120,
        )
        [late] = coordinator("sla_escalation")
        assert waiting in late and "not been acknowledged" in late and "SLA-ACK-1" in late
        [digest] = coordinator("daily_digest")
        assert "Open referrals: 2" in digest and "Eligible, not yet matched: 1" in digest
        assert "25 November 2026" in str(smtp.received(template="daily_digest")[0].message["Subject"])

        worker.stop()  # state survives a restart: nothing is escalated or digested twice
        worker.start()
        worker.wait_for_log("worker_ready", occurrences=2)
        worker.wait_for_log("digest_requested", occurrences=2)
        clock.write_text("2026-12-09T09:00:00+00:00")  # ten working days after submission
        wait_until(
            lambda: len(coordinator("sla_escalation")) == 3 and len(coordinator("daily_digest")) == 2,
            seconds=120,
        )
        # the schedule looked twice more at that time (the first look's requests are published by then)
        worker.wait_for_log('"upto": "2026-12-09T09:00:00.000000"', occurrences=2)
        assert worker.logs().count('"referral_escalated"') == 3
    finally:
        worker.stop()
    escalations = coordinator("sla_escalation")
    assert len(escalations) == 3 and len(coordinator("daily_digest")) == 2
    decided_late = [text for text in escalations if "not been decided" in text]
    assert sorted(waiting in text or eligible in text for text in decided_late) == [True, True]
    assert {eligible in text for text in decided_late} == {True, False}
    assert "Past their service level: 2" in coordinator("daily_digest")[1]
    assert smtp.duplicates() == {}


@pytest.mark.fault
def test_digests_and_escalations_go_on_after_the_broker_was_away_during_a_digest(
    tmp_path: Path, smtp: SmtpSink
) -> None:
    """The schedule's timer meets the broker gone (longer than the 30 s the digest waits for its view and
    the producer waits for acknowledgements) while the day's digest is due. It used to end for good on that
    exception, with /ready still green; supervised, it is retried with back-off and, once the broker is
    back, the digest and the escalations go out (once each), and later ones too."""
    broker = local_kafka().LocalKafka(data_dir=tmp_path / "kafka")  # this test stops its own broker
    bootstrap = broker.start()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    worker: ServiceProcess | None = None
    try:
        asyncio.run(create_topics(bootstrap, TOPICS, prefix=prefix))
        clock = tmp_path / "now"
        clock.write_text(SUBMITTED.isoformat())
        env = service_env(
            bootstrap,
            prefix,
            tmp_path / "data",
            CIRCLES_CLOCK=f"file:{clock}",
            CIRCLES_SMTP_PORT=str(smtp.port),
            CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
            CIRCLES_SCHEDULE_INTERVAL_S="0.3",
        )
        run_cli(
            env, "agency", "add", "mappa-humberside", "--name", "MAPPA", "--contact-email", "m@a.example.org"
        )
        worker = ServiceProcess("notifications-worker", env, name="notifications-outage").start()
        worker.wait_for_log("worker_ready")
        waiting, _ = asyncio.run(publish_referral_events(bootstrap, prefix))
        wait_until(lambda: len(smtp.received(to="m@a.example.org")) == 3, what="agency messages")

        def coordinator(template: str) -> list[str]:
            return [m.text() for m in smtp.received(to=COORDINATOR, template=template)]

        broker.stop()
        stopped = time.monotonic()
        clock.write_text("2026-11-25T09:00:00+00:00")  # the digest and an escalation are due now
        worker.wait_for_log("background_task_failed", seconds=90)
        time.sleep(max(0.0, stopped + AWAY_S - time.monotonic()))
        assert broker.start() == bootstrap, "the broker came back on other ports"
        wait_until(
            lambda: len(coordinator("sla_escalation")) == 1 and len(coordinator("daily_digest")) == 1,
            seconds=180,
            what="the escalation and the digest after the outage",
        )
        assert waiting in coordinator("sla_escalation")[0]
        clock.write_text("2026-12-09T09:00:00+00:00")  # later days: the timer still runs
        wait_until(
            lambda: len(coordinator("sla_escalation")) == 3 and len(coordinator("daily_digest")) == 2,
            seconds=120,
            what="the next day's digest and escalations",
        )
        assert worker.alive() and worker.starts == 1, "the worker recovered by itself"
        assert smtp.duplicates() == {}
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
