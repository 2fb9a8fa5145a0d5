"""Crash test: the notifications worker is SIGKILLed (twice) during a burst of 500 referral events (1,000
messages: an email and a webhook each) and restarted. Afterwards the SMTP server and the webhook receiver
have received each expected message, and each once after de-duplicating on its event id (see the
sent-journal: a message the receiver took in the instant before the kill is the one thing sent again).

The worker is killed twice, at moments unrelated to any one message (the first kill may land while messages
are in flight, between sending and recording, or while the results are committed)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from functools import partial
from pathlib import Path

import pytest

from schemas.envelope import decode
from schemas.events.notifications import NotificationDelivered
from schemas.events.referrals import ReferralSubmitted
from schemas.topics import EVENT_TYPES, NOTIFICATION_EVENTS, TOPICS
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume_all, wait_drained
from tests.notification_sinks import SmtpSink, WebhookSink, wait_until
from tests.processes import ServiceProcess, run_cli, service_env
from tests.samples import sample

pytestmark = [pytest.mark.integration, pytest.mark.fault]
EVENTS = 500
KILL_AFTER = (250, 600)
SEND_CONCURRENCY = 16
"""messages received (of 1,000) shortly before each SIGKILL of the worker"""


async def burst(bootstrap: str, prefix: str) -> list[str]:
    template = sample(ReferralSubmitted)
    ids = []
    async with Publisher(bootstrap, "/circles/referrals", prefix=prefix) as publisher:
        pending = []
        for number in range(EVENTS):
            event = template.model_copy(
                update={"referral_id": uuid.uuid4(), "agency_reference": f"CRASH-{number:04d}"}
            )
            ids.append(str(event.referral_id))
            envelope = publisher.envelope(event, correlation_id=f"crash-{number}")
            pending.append(await publisher.send(event, envelope))
        await asyncio.gather(*pending)
    return ids


def test_sigkill_of_the_notifications_worker_during_a_burst_sends_each_message_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    smtp = SmtpSink().start()
    hooks = WebhookSink().start()
    env = service_env(
        kafka_bootstrap,
        prefix,
        tmp_path,
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_DIGEST_ENABLED="false",
        CIRCLES_RETRY_BASE_S="0.5",
        CIRCLES_RETRY_SCAN_INTERVAL_S="0.2",
        CIRCLES_SEND_CONCURRENCY=str(SEND_CONCURRENCY),
    )
    created = run_cli(
        env,
        "agency", "add", "mappa-humberside", "--name", "MAPPA", "--json",
        "--contact-email", "mappa@agencies.example.org", "--webhook-url", hooks.url("mappa-humberside"),
    )  # fmt: skip
    assert json.loads(created.stdout)["webhook_secret"]
    worker = ServiceProcess("notifications-worker", env).start()
    try:
        worker.wait_for_log("worker_ready")
        started = time.monotonic()
        referral_ids = asyncio.run(burst(kafka_bootstrap, prefix))

        def received() -> int:
            return len(smtp.received()) + len(hooks.received(ok=True))

        def reached(count: int) -> bool:
            return received() >= count

        at_kill = []
        for threshold in KILL_AFTER:
            wait_until(partial(reached, threshold), seconds=120, what=f"{threshold} messages")
            time.sleep(random.uniform(0.05, 0.4))  # a moment unrelated to any one message's progress
            worker.kill()
            at_kill.append(received())
            worker.start()
            worker.wait_for_log("worker_ready", occurrences=worker.starts)
        expected = 2 * EVENTS

        def distinct() -> int:
            return len({m.event_id for m in smtp.received()}) + len(
                {d.event_id for d in hooks.received(ok=True)}
            )

        wait_until(lambda: distinct() >= expected, seconds=180, what=f"{expected} distinct messages")
        elapsed = time.monotonic() - started
        wait_drained(kafka_bootstrap, prefix, "notifications")  # a repeated message would be sent by now
    finally:
        worker.stop()
        hooks.stop()
        smtp.stop()

    mails, webhooks = smtp.received(), hooks.received(ok=True)
    logs = worker.logs()
    in_doubt = {
        line["notification_id"]
        for line in map(json.loads, filter(None, logs.splitlines()))
        if line.get("event") == "notification_in_doubt_resent"
    }
    repeated = {**smtp.duplicates(), **hooks.duplicates()}
    # Sent twice can only be a message the receiver had taken in the instant before the kill, before the
    # worker could write it to its sent-journal: one of the messages in flight, resent with the same id.
    assert set(repeated) <= in_doubt, "a message known to be sent was sent again"
    assert all(count == 2 for count in repeated.values()) and len(repeated) <= SEND_CONCURRENCY * len(
        KILL_AFTER
    )
    # What receivers keep, de-duplicating on X-Circles-Event-Id / Message-ID: each message exactly once.
    assert len({m.event_id for m in mails}) == EVENTS and len({d.event_id for d in webhooks}) == EVENTS
    assert {m.text().split("/v1/referrals/")[1].split()[0] for m in mails} == set(referral_ids)
    assert {json.loads(d.body)["referral_id"] for d in webhooks} == set(referral_ids)
    records = asyncio.run(consume_all(kafka_bootstrap, prefix + NOTIFICATION_EVENTS.name))
    delivered = {
        event.notification_id
        for event in (decode(r.value, r.headers, EVENT_TYPES)[1] for r in records)
        if isinstance(event, NotificationDelivered)
    }
    assert len(delivered) == expected
    assert worker.starts == 3 and leaks(logs) == []
    print(
        f"\nnotifications crash test: {expected} messages in {elapsed:.1f}s, killed at {at_kill} received; "
        f"{logs.count('notification_found_in_journal')} recognised from the sent-journal, "
        f"{len(in_doubt)} in doubt and sent again, of which {len(repeated)} had reached the receiver "
        f"(same event id); {len(records) - len(delivered)} redelivered outcome records"
    )
