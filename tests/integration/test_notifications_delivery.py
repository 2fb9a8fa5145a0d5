"""The notifications service end to end: a real referrals worker and notifications worker over the real
broker, a real SMTP server and a real HTTP receiver in the test process.

Referrals are submitted as the referrals API does (``SubmitReferral`` commands carrying the full, personal,
submission); matching events are published as the matching service would. Agencies are registered with the
CLI, which gives each webhook its signing secret.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.common import LocalAuthority, Reason, RiskLevel
from schemas.envelope import Event, decode
from schemas.events.matching import ChosenVolunteer, CircleFormed, MatchProposed
from schemas.events.notifications import NotificationDeadLettered, NotificationDelivered
from schemas.events.referrals import SubmitReferral, WithdrawReferral
from schemas.topics import (
    EVENT_TYPES,
    NOTIFICATION_EVENTS,
    NOTIFICATION_LOG,
    NOTIFICATION_PROGRESS,
    NOTIFICATION_REQUESTS,
    REFERRAL_EVENTS,
    TOPICS,
)
from services.notifications.channels import verify_signature
from services.notifications.commands import referral_log
from services.notifications.domain.delivery import DeliveryEntry
from services.referrals.domain.referral import referral_id_for
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume_all, wait_drained
from tests.notification_sinks import SmtpSink, WebhookSink, wait_until
from tests.processes import ServiceProcess, run_cli, sealing_publisher, service_env
from tests.samples import PERSONAL_SENTINELS, submission

pytestmark = pytest.mark.integration
COORDINATOR = "coordinator@circles.example.org"
MAX_ATTEMPTS = 5


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    smtp: SmtpSink
    hooks: WebhookSink
    secrets: dict[str, str]
    referrals: ServiceProcess
    notifier: ServiceProcess

    def submit(self, agency_id: str, reference: str, **overrides: Any) -> str:
        body = submission(agency_reference=reference, **overrides)
        command = SubmitReferral(
            referral_id=referral_id_for(agency_id, reference),
            agency_id=agency_id,
            submission=body,
            fingerprint=body.fingerprint(),
            received_at=datetime.now(UTC),
        )
        self.publish(command, "/circles/referrals/api")
        return str(command.referral_id)

    def publish(self, event: Event, source: str) -> None:
        async def send() -> None:
            async with sealing_publisher(self.env, source) as publisher:
                await publisher.publish(
                    event, publisher.envelope(event, correlation_id=f"test-{uuid.uuid4()}")
                )

        asyncio.run(send())

    def log(self, referral_id: str) -> list[DeliveryEntry]:
        return asyncio.run(referral_log(self.bootstrap, uuid.UUID(referral_id), topic_prefix=self.prefix))

    def outcomes(self) -> list[Any]:
        records = asyncio.run(consume_all(self.bootstrap, self.prefix + NOTIFICATION_EVENTS.name))
        return [decode(r.value, r.headers, EVENT_TYPES)[1] for r in records]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    data: Path = tmp_path_factory.mktemp("notifications")
    smtp = SmtpSink().start()
    hooks = WebhookSink(fail_first={"police-mosovo": 2}, always_fail={"hmp-hull"}).start()
    smtp.refused.add("nobody@prison.example.org")
    env = service_env(
        kafka_bootstrap,
        prefix,
        data,
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
        CIRCLES_PARTNER_API_URL="https://api.circles.test",
        CIRCLES_COORDINATOR_URL="https://coordinator.circles.test",
        CIRCLES_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        CIRCLES_RETRY_BASE_S="0.4",
        CIRCLES_RETRY_SCAN_INTERVAL_S="0.1",
        CIRCLES_DIGEST_ENABLED="false",
        CIRCLES_WEBHOOK_TIMEOUT_S="5",
    )
    agencies = {
        "mappa-humberside": ("mappa", "mappa@agencies.example.org", True),
        "police-mosovo": ("police", "police@agencies.example.org", True),
        "probation-hull": ("probation", "probation@agencies.example.org", False),
        "hmp-hull": ("prison", "nobody@prison.example.org", True),
    }
    secrets = {}
    for agency_id, (kind, mailbox, webhook) in agencies.items():
        args = ["agency", "add", agency_id, "--name", f"{agency_id} (test)", "--kind", kind, "--json"]
        args += ["--local-authority", "hull", "--contact-email", mailbox]
        args += ["--webhook-url", hooks.url(agency_id)] if webhook else []
        secrets[agency_id] = json.loads(run_cli(env, *args).stdout)["webhook_secret"]
    referrals = ServiceProcess("referrals-worker", env).start()
    notifier = ServiceProcess("notifications-worker", env).start()
    try:
        referrals.wait_for_log("worker_ready")
        notifier.wait_for_log("worker_ready")
        yield Stack(env, prefix, kafka_bootstrap, smtp, hooks, secrets, referrals, notifier)
    finally:
        notifier.stop()
        referrals.stop()
        hooks.stop()
        smtp.stop()
    assert leaks(notifier.logs() + referrals.logs()) == []


def test_a_referral_is_acknowledged_and_decided_once_by_email_and_signed_webhook(stack: Stack) -> None:
    referral_id = stack.submit("mappa-humberside", "MAPPA-N-1")
    mailbox = "mappa@agencies.example.org"
    wait_until(
        lambda: (
            len(stack.smtp.received(to=mailbox)) >= 2 and len(stack.hooks.received("mappa-humberside")) >= 2
        ),
        what="two emails and two webhooks",
    )
    mails = stack.smtp.received(to=mailbox)
    assert sorted(m.template for m in mails) == ["decision_made", "referral_received"]
    for mail in mails:
        assert mail.message["Message-ID"] == f"<{mail.event_id}@circles.example.org>"
        assert f"https://api.circles.test/v1/referrals/{referral_id}" in mail.text()
        assert "MAPPA-N-1" in str(mail.message["Subject"])
    hooks = stack.hooks.received("mappa-humberside")
    bodies = [json.loads(d.body) for d in hooks]
    assert sorted(b["event_type"] for b in bodies) == ["decision_made", "referral_received"]
    for delivery, body in zip(hooks, bodies, strict=True):
        assert verify_signature(
            delivery.headers["X-Circles-Signature"],
            delivery.body,
            stack.secrets["mappa-humberside"],
            now=time.time(),
        )
        assert not verify_signature(
            delivery.headers["X-Circles-Signature"],
            delivery.body,
            stack.secrets["police-mosovo"],
            now=time.time(),
        )
        assert delivery.event_id == body["event_id"]
        assert body["referral_id"] == referral_id and body["link"].endswith(referral_id)
        assert body["status"] in {"received", "eligible"} and body["agency_reference"] == "MAPPA-N-1"

    # The referral events are delivered again (as after a crash of their consumer): nothing is sent again.
    async def redeliver() -> int:
        records = [
            r
            for r in await consume_all(stack.bootstrap, stack.prefix + REFERRAL_EVENTS.name)
            if r.key.decode() == referral_id
        ]
        async with Publisher(stack.bootstrap, "/test", prefix=stack.prefix) as publisher:
            for record in records:
                await publisher.send_raw(record.topic, record.value, record.key, list(record.headers))
        return len(records)

    assert asyncio.run(redeliver()) == 2
    wait_drained(stack.bootstrap, stack.prefix, "notifications")  # a repeated message would be sent by now
    assert len(stack.smtp.received(to=mailbox)) == 2 and len(stack.hooks.received("mappa-humberside")) == 2
    assert stack.smtp.duplicates() == {} and stack.hooks.duplicates() == {}
    entries = stack.log(referral_id)
    assert (
        len(entries) == 4
        and {e.status.value for e in entries} == {"sent"}
        and {e.attempts for e in entries} == {1}
    )


def test_a_webhook_answering_500_is_retried_until_it_succeeds_without_duplicates(stack: Stack) -> None:
    referral_id = stack.submit("police-mosovo", "POLICE-N-1")
    wait_until(
        lambda: len(stack.hooks.received("police-mosovo", ok=True)) >= 2, what="both police webhooks accepted"
    )
    deliveries = stack.hooks.received("police-mosovo")
    by_event: dict[str, list[int]] = {}
    for delivery in deliveries:
        by_event.setdefault(delivery.event_id, []).append(delivery.status)
    assert len(by_event) == 2
    assert all(statuses == [500, 500, 204] for statuses in by_event.values()), by_event
    for delivery in deliveries:  # every try signed afresh, with the agency's own secret
        signed = delivery.headers["X-Circles-Signature"]
        assert verify_signature(signed, delivery.body, stack.secrets["police-mosovo"], now=time.time())
        assert not verify_signature(signed, delivery.body, stack.secrets["mappa-humberside"], now=time.time())
    assert all(
        len({d.body for d in deliveries if d.event_id == e}) == 1 for e in by_event
    )  # same body each try

    def webhook_log() -> list[tuple[str, int, str | None]]:
        entries = [e for e in stack.log(referral_id) if e.recipient.channel.value == "webhook"]
        return [(e.status.value, e.attempts, e.last_error) for e in entries]

    # the receiver's 204 comes before the worker records the result: wait for the log to catch up
    wait_until(lambda: webhook_log() == [("sent", 3, "http_500")] * 2, what="both webhooks logged as sent")
    delivered = [
        o
        for o in stack.outcomes()
        if isinstance(o, NotificationDelivered) and str(o.notification_id) in by_event
    ]
    assert sorted(o.attempts for o in delivered) == [3, 3]


def test_an_smtp_server_that_is_down_is_retried_then_delivers_once(stack: Stack) -> None:
    mailbox = "probation@agencies.example.org"
    stack.smtp.stop()
    try:
        referral_id = stack.submit("probation-hull", "PROBATION-N-1")
        wait_until(
            lambda: any(e.last_error == "connection_failed" for e in stack.log(referral_id)),
            what="a failed attempt",
        )
    finally:
        stack.smtp.start()
    wait_until(lambda: len(stack.smtp.received(to=mailbox)) >= 2, what="both emails after the outage")
    wait_until(
        lambda: all(e.status.value == "sent" for e in stack.log(referral_id)), what="the log to say sent"
    )
    wait_drained(stack.bootstrap, stack.prefix, "notifications")  # a duplicate would have arrived by now
    assert sorted(m.template for m in stack.smtp.received(to=mailbox)) == [
        "decision_made",
        "referral_received",
    ]
    entries = stack.log(referral_id)
    assert all(e.status.value == "sent" for e in entries)
    assert max(e.attempts for e in entries) >= 2 and stack.smtp.duplicates() == {}


def test_a_permanently_failing_recipient_is_dead_lettered_with_its_reason_and_the_coordinator_told(
    stack: Stack,
) -> None:
    referral_id = stack.submit("hmp-hull", "HMP-N-1")

    def dead() -> list[DeliveryEntry]:
        return [e for e in stack.log(referral_id) if e.status.value == "dead"]

    wait_until(lambda: len(dead()) == 4, seconds=60, what="four dead messages")
    reasons = sorted((e.recipient.channel.value, e.last_error, e.attempts) for e in dead())
    assert reasons == [("email", "smtp_550", 1)] * 2 + [("webhook", "http_500", MAX_ATTEMPTS)] * 2
    assert len(stack.hooks.received("hmp-hull")) == 2 * MAX_ATTEMPTS
    dead_ids = {str(e.notification_id) for e in dead()}
    lettered = [
        o
        for o in stack.outcomes()
        if isinstance(o, NotificationDeadLettered) and str(o.notification_id) in dead_ids
    ]
    assert sorted(o.reason for o in lettered) == ["http_500", "http_500", "smtp_550", "smtp_550"]

    def told() -> list[Any]:
        return [
            m
            for m in stack.smtp.received(to=COORDINATOR, template="delivery_failed")
            if referral_id in m.text()
        ]

    wait_until(lambda: len(told()) == 4, what="the coordinator told of each")
    texts = "\n".join(m.text() for m in told())
    assert (
        "HTTP 500" in texts and "SMTP 550" in texts and f"circles notifications status {referral_id}" in texts
    )
    expected = [("agency", "dead")] * 4 + [("coordinator", "sent")] * 4

    def statuses() -> list[tuple[str, str]]:
        rows = json.loads(run_cli(stack.env, "notifications", "status", referral_id, "--json").stdout)
        return sorted((r["recipient_kind"], r["status"]) for r in rows)

    wait_until(lambda: statuses() == expected, what="the log to record the coordinator's messages as sent")
    plain = run_cli(stack.env, "notifications", "status", referral_id).stdout
    assert "http_500" in plain and "smtp_550" in plain and "coordinator:coordinator" in plain
    unknown = run_cli(stack.env, "notifications", "status", str(uuid.uuid4()), check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: no messages recorded for referral")


def test_proposals_go_to_the_coordinator_and_a_new_circle_to_the_referrer_and_its_outer_circle(
    stack: Stack,
) -> None:
    referral_id = uuid.UUID(stack.submit("mappa-humberside", "MAPPA-N-2"))
    proposal_id = uuid.uuid4()
    now = datetime.now(UTC)
    stack.publish(
        MatchProposed(
            referral_id=referral_id,
            agency_id="mappa-humberside",
            proposal_id=proposal_id,
            attempt=1,
            volunteers=[
                ChosenVolunteer(volunteer_id=f"vol-{n}", reasons=[Reason(code="vetted", message="in date")])
                for n in range(4)
            ],
            passed_over=[],
            flags=[],
            score=1.0,
            risk_level=RiskLevel.HIGH,
            policy_version="test-1",
            proposed_at=now,
        ),
        "/circles/matching",
    )
    stack.publish(
        CircleFormed(
            referral_id=referral_id,
            agency_id="mappa-humberside",
            circle_id=uuid.uuid4(),
            proposal_id=proposal_id,
            volunteer_ids=[f"vol-{n}" for n in range(4)],
            local_authority=LocalAuthority.HULL,
            formed_at=now,
            year=now.year,
            circles_formed_in_year=1,
            yearly_target=8,
        ),
        "/circles/matching",
    )

    def circle_mails() -> list[tuple[str, str]]:
        return sorted(
            (m.recipients[0], m.template)
            for m in stack.smtp.received()
            if m.template.startswith("circle_formed") and str(referral_id) in m.text()
        )

    wait_until(lambda: len(circle_mails()) == 3, what="three circle-formed emails")
    [to_referrer] = [m for m in stack.smtp.received(template="circle_formed") if str(referral_id) in m.text()]
    assert str(to_referrer.message["Subject"]) == "Referral MAPPA-N-2: a circle has been formed"
    assert circle_mails() == [
        ("mappa@agencies.example.org", "circle_formed"),
        ("police@agencies.example.org", "circle_formed_outer_circle"),
        ("probation@agencies.example.org", "circle_formed_outer_circle"),
    ]
    wait_until(
        lambda: any(
            json.loads(d.body)["event_type"] == "circle_formed_outer_circle"
            for d in stack.hooks.received("police-mosovo", ok=True)
        ),
        what="police webhook",
    )
    [proposal] = [
        m
        for m in stack.smtp.received(to=COORDINATOR, template="match_proposed")
        if str(referral_id) in m.text()
    ]
    assert f"https://coordinator.circles.test/proposals/{proposal_id}" in proposal.text()
    assert not [
        d for d in stack.hooks.received("hmp-hull") if str(referral_id) in d.body.decode()
    ]  # a prison is not outer circle


def test_no_personal_data_in_any_email_webhook_log_line_or_notification_topic(stack: Stack) -> None:
    """Distinctive names, dates of birth, PNC numbers, referrer contacts and notes go into every submission
    (``tests.samples.submission_body``); the messages they cause carry none of them."""
    refused = stack.submit("mappa-humberside", "MAPPA-PD-1", consent__given=False)
    needs = stack.submit("mappa-humberside", "MAPPA-PD-2", custody__expected_release_date=None)
    withdrawn = stack.submit("mappa-humberside", "MAPPA-PD-3")
    wait_until(
        lambda: len([m for m in stack.smtp.received() if withdrawn in m.text()]) == 2,
        what="decision for PD-3",
    )
    stack.publish(
        WithdrawReferral(
            referral_id=uuid.UUID(withdrawn),
            agency_id="mappa-humberside",
            reason=f"{PERSONAL_SENTINELS[1]} moved to 1 Invented Street",
            received_at=datetime.now(UTC),
        ),
        "/circles/referrals/api",
    )
    expected = {
        refused: {"referral_received", "decision_made"},
        needs: {"referral_received", "needs_information"},
        withdrawn: {"referral_received", "decision_made", "referral_withdrawn"},
    }

    def arrived() -> bool:
        return all(
            {m.template for m in stack.smtp.received(to="mappa@agencies.example.org") if rid in m.text()}
            == templates
            and {
                json.loads(d.body)["event_type"]
                for d in stack.hooks.received("mappa-humberside")
                if json.loads(d.body)["referral_id"] == rid
            }
            == templates
            for rid, templates in expected.items()
        )

    wait_until(arrived, what="every message of the three referrals")
    refusal = next(m for m in stack.smtp.received(template="decision_made") if refused in m.text())
    assert "no_consent" in refusal.text() and "informed consent" in refusal.text()
    assert (
        "release_date_missing"
        in next(m for m in stack.smtp.received(template="needs_information") if needs in m.text()).text()
    )

    everything = [m.raw.decode(errors="replace") for m in stack.smtp.received()]
    everything += [d.body.decode() + json.dumps(d.headers) for d in stack.hooks.received()]
    assert len(everything) >= 20
    found = {value for text in everything for value in PERSONAL_SENTINELS if value in text}
    assert found == set(), f"personal data in messages: {found}"
    assert "Invented Street" not in "".join(everything)
    for spec in (NOTIFICATION_REQUESTS, NOTIFICATION_LOG, NOTIFICATION_EVENTS, NOTIFICATION_PROGRESS):
        records = asyncio.run(consume_all(stack.bootstrap, stack.prefix + spec.name))
        assert records or spec is NOTIFICATION_PROGRESS
        assert leaks(b"".join(r.value or b"" for r in records).decode()) == [], spec.name
    assert leaks(stack.notifier.logs()) == [] and "Invented Street" not in stack.notifier.logs()
    assert "notification_sent" in stack.notifier.logs()
