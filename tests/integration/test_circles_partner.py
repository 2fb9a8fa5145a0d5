"""A circle's life as the referring agency sees it, end to end on the real broker: the referrals worker and
partner API and the notifications worker as real processes, a real HTTP receiver for the agencies' webhooks
and a real SMTP server for the mailboxes.

The circles service's facts are written to its facts topic here as its worker would write them, and a
concern's ``RaiseConcern`` command (its summary sealed under the referral's key) to its commands topic as the
``circles circle concern`` command would; the agency acts through the partner API.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.envelope import Event, decode
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleEnded,
    CircleOutcome,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    CoreMemberAttendance,
    EndReason,
    MeetingRecorded,
    RaiseConcern,
    RecordMeeting,
    ReviewRecorded,
    circle_id_of,
)
from schemas.events.matching import CircleFormed
from schemas.topics import (
    CIRCLES_COMMANDS,
    CIRCLES_EVENTS,
    EVENT_TYPES,
    NOTIFICATION_LOG,
    NOTIFICATION_REQUESTS,
    REFERRALS_CIRCLES,
    TOPICS,
)
from services.notifications.channels import verify_signature
from services.runtime.kafka import create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume_all, wait_drained
from tests.notification_sinks import SmtpSink, WebhookSink, wait_until
from tests.processes import ServiceProcess, free_port, run_cli, sealer_for, sealing_publisher, service_env
from tests.samples import sample, submission_body

pytestmark = pytest.mark.integration
COORDINATOR = "coordinator@circles.example.org"
MAPPA, POLICE = "mappa-humberside", "police-mosovo"
MAPPA_MAIL = "mappa@agencies.example.org"
SUMMARY = "Invented summary: the synthetic core member spoke of a synthetic worry"
MINUTES = "Invented minutes: nothing of note at a synthetic meeting"
CIRCLE_TEMPLATES = {
    "meeting_recorded",
    "concern_raised",
    "concern_escalated",
    "review_recorded",
    "circle_ended",
}


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    api: str
    keys: dict[str, str]
    secrets: dict[str, str]
    smtp: SmtpSink
    hooks: WebhookSink
    processes: list[ServiceProcess]

    def client(self, agency_id: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[agency_id]}"}
        return httpx.Client(base_url=self.api, headers=headers, timeout=30)

    def publish(self, *events: Event, source: str = "/circles/circles/worker") -> None:
        async def send() -> None:
            async with sealing_publisher(self.env, source) as publisher:
                for event in events:
                    await publisher.publish(
                        event, publisher.envelope(event, correlation_id=f"t-{uuid.uuid4()}")
                    )

        asyncio.run(send())

    def records(self, topic: str) -> list[Any]:
        return asyncio.run(consume_all(self.bootstrap, self.prefix + topic))

    def commands(self) -> list[Event]:
        """The circles commands, opened with the test's data keys."""

        async def read() -> list[Event]:
            sealer = sealer_for(self.env, ["referral"])
            await sealer.start()
            try:
                records = await consume_all(self.bootstrap, self.prefix + CIRCLES_COMMANDS.name)
                return [(await sealer.decode(r.value, r.headers, EVENT_TYPES))[1] for r in records]
            finally:
                await sealer.stop()

        return asyncio.run(read())


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running(kafka_bootstrap, tmp_path_factory.mktemp("circles-partner"), ())


@pytest.fixture
def live(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    """With the real circles worker: the facts are its own."""
    yield from running(kafka_bootstrap, tmp_path, ("circles-worker",))


def running(kafka_bootstrap: str, data: Path, more: tuple[str, ...]) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    smtp, hooks = SmtpSink().start(), WebhookSink().start()
    port = free_port()
    env = service_env(
        kafka_bootstrap,
        prefix,
        data,
        CIRCLES_API_PORT=str(port),
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
        CIRCLES_PARTNER_API_URL="https://api.circles.test",
        CIRCLES_COORDINATOR_URL="https://coordinator.circles.test",
        CIRCLES_RETRY_SCAN_INTERVAL_S="0.2",
        CIRCLES_DIGEST_ENABLED="false",
    )
    keys, secrets = {}, {}
    for agency_id, kind, mailbox in (
        (MAPPA, "mappa", MAPPA_MAIL),
        (POLICE, "police", "police@agencies.example.org"),
    ):
        args = ["agency", "add", agency_id, "--name", f"{agency_id} (test)", "--kind", kind, "--json"]
        args += [
            "--local-authority",
            "hull",
            "--contact-email",
            mailbox,
            "--webhook-url",
            hooks.url(agency_id),
        ]
        created = json.loads(run_cli(env, *args).stdout)
        keys[agency_id], secrets[agency_id] = created["api_key"], created["webhook_secret"]
    names = ("referrals-worker", "referrals-api", "notifications-worker", *more)
    processes = [ServiceProcess(name, env).start() for name in names]
    api = f"http://127.0.0.1:{port}"
    try:
        for process in processes:
            if process.process.endswith("worker"):
                process.wait_for_log("worker_ready")
        processes[1].wait_http(f"{api}/ready")
        yield Stack(env, prefix, kafka_bootstrap, api, keys, secrets, smtp, hooks, processes)
        for process in processes:
            assert process.alive(), f"{process.name} died:\n{process.tail()}"
    finally:
        for process in reversed(processes):
            process.stop()
        hooks.stop()
        smtp.stop()
    logs = "".join(process.logs() for process in processes)
    assert leaks(logs) == [] and SUMMARY not in logs and "passed to the offender manager" not in logs


def formed_circle(stack: Stack, agency_id: str, reference: str) -> uuid.UUID:
    """A referral submitted over the API, its circle formed (as matching says) and activated (as circles
    says)."""
    with stack.client(agency_id) as client:
        response = client.post("/v1/referrals", json=submission_body(agency_reference=reference))
        assert response.status_code == 202, response.text
        referral_id = uuid.UUID(response.json()["referral_id"])
        wait_until(
            lambda: client.get(f"/v1/referrals/{referral_id}").json()["status"] == "eligible",
            what="the referral assessed",
        )
    formed = sample(CircleFormed).model_copy(update={"referral_id": referral_id, "agency_id": agency_id})
    stack.publish(formed, source="/circles/matching/worker")
    stack.publish(
        sample(CircleActivated).model_copy(update=fact_base(referral_id, agency_id)),
    )
    return referral_id


def fact_base(referral_id: uuid.UUID, agency_id: str) -> dict[str, Any]:
    return {"referral_id": referral_id, "circle_id": circle_id_of(referral_id), "agency_id": agency_id}


def raise_concern(stack: Stack, referral_id: uuid.UUID, agency_id: str, level: ConcernLevel) -> uuid.UUID:
    """As ``circles circle concern`` (the command, summary sealed) and the circles worker (the fact)."""
    concern_id, at = uuid.uuid4(), datetime.now(UTC)
    command = RaiseConcern(
        command_id=uuid.uuid4(),
        referral_id=referral_id,
        requested_by="cli:tester",
        requested_at=at,
        concern_id=concern_id,
        level=level,
        summary=SUMMARY,
    )
    stack.publish(command, source="/circles/cli")
    stack.publish(
        ConcernRaised(
            **fact_base(referral_id, agency_id),
            concern_id=concern_id,
            level=level,
            raised_at=at,
            escalation_due_at=at + timedelta(hours=4) if level is ConcernLevel.URGENT else None,
        )
    )
    return concern_id


def test_the_agency_follows_its_circle_reads_and_acknowledges_concerns_and_hears_of_each_step(
    stack: Stack,
) -> None:
    referral_id = formed_circle(stack, MAPPA, "MAPPA-C-1")
    theirs = formed_circle(stack, POLICE, "POLICE-C-1")
    now = datetime.now(UTC)
    meeting = MeetingRecorded(
        **fact_base(referral_id, MAPPA),
        meeting_id=uuid.uuid4(),
        held_on=date.today(),
        core_member_attendance=CoreMemberAttendance.LATE,
        volunteer_ids=["vol-001"],
        minutes_due_at=now + timedelta(hours=48),
        minutes_received=False,
        recorded_at=now,
    )
    recorded = RecordMeeting(  # as `circles circle meeting --minutes-file`: the minutes are not the agency's
        command_id=uuid.uuid4(),
        referral_id=referral_id,
        requested_by="cli:tester",
        requested_at=now,
        meeting_id=meeting.meeting_id,
        held_on=meeting.held_on,
        core_member_attendance=meeting.core_member_attendance,
        minutes=MINUTES,
    )
    stack.publish(recorded, source="/circles/cli")
    stack.publish(meeting)
    urgent = raise_concern(stack, referral_id, MAPPA, ConcernLevel.URGENT)
    routine = raise_concern(stack, referral_id, MAPPA, ConcernLevel.ROUTINE)
    police_concern = raise_concern(stack, theirs, POLICE, ConcernLevel.URGENT)

    mappa, police = stack.client(MAPPA), stack.client(POLICE)
    with mappa, police:

        def circle() -> dict[str, Any] | None:
            found: dict[str, Any] | None = mappa.get(f"/v1/referrals/{referral_id}").json()["circle"]
            return found

        wait_until(lambda: (circle() or {}).get("open_concerns") == 2, what="the circle with its concerns")
        view = mappa.get(f"/v1/referrals/{referral_id}").json()
        assert view["status"] == "circle_formed"
        assert view["circle"] == {
            "circle_id": circle_id_of(referral_id),
            "status": "active",
            "formed_on": sample(CircleActivated).formed_on.isoformat(),
            "meetings_held": 1,
            "last_meeting_on": meeting.held_on.isoformat(),
            "next_review_due": sample(CircleActivated).next_review_due.isoformat(),
            "open_concerns": 2,
            "outcome": None,
            "end_reason": None,
            "ended_on": None,
        }

        # the concerns: listed without their text; one read with it, by its own agency only
        listed = mappa.get("/v1/concerns", params={"state": "open"}).json()["concerns"]
        assert {c["concern_id"] for c in listed} == {str(urgent), str(routine)}
        assert SUMMARY not in json.dumps(listed)
        wait_until(
            lambda: mappa.get(f"/v1/concerns/{urgent}").json()["summary"] == SUMMARY,
            what="the summary readable by the owning agency",
        )
        one = mappa.get(f"/v1/concerns/{urgent}").json()
        assert (
            one["level"] == "urgent"
            and one["state"] == "open"
            and one["circle_id"] == circle_id_of(referral_id)
        )

        # another agency's circle and concern are 404, like unknown ones; nothing is written for them
        for response in (
            mappa.get(f"/v1/concerns/{police_concern}"),
            mappa.post(f"/v1/concerns/{police_concern}/acknowledgement", json={"note": "not ours"}),
            mappa.get(f"/v1/referrals/{theirs}"),
            police.get(f"/v1/concerns/{urgent}"),
            police.post(f"/v1/concerns/{urgent}/acknowledgement", json={}),
            police.get(f"/v1/referrals/{referral_id}"),
            mappa.get(f"/v1/concerns/{uuid.uuid4()}"),
        ):
            assert response.status_code == 404, response.request.url
            assert response.headers["content-type"] == "application/problem+json"
        assert {c["concern_id"] for c in police.get("/v1/concerns").json()["concerns"]} == {
            str(police_concern)
        }

        # bad input: a problem with every field error
        bad = mappa.post(f"/v1/concerns/{urgent}/acknowledgement", json={"note": " ", "by": "me"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("body", "note"), ("body", "by")}
        assert bad.json()["title"] == "Invalid acknowledgement"

        # acknowledged once: twice is the same answer, and one command
        first = mappa.post(
            f"/v1/concerns/{urgent}/acknowledgement", json={"note": "passed to the offender manager"}
        )
        again = mappa.post(f"/v1/concerns/{urgent}/acknowledgement", json={"note": "again"})
        assert first.status_code == again.status_code == 200
        assert first.json()["state"] == "acknowledged" and again.json() == first.json()
        assert mappa.get(f"/v1/concerns/{urgent}").json()["state"] == "acknowledged"
        acknowledgements = [c for c in stack.commands() if isinstance(c, AcknowledgeConcern)]
        assert len(acknowledgements) == 1
        command = acknowledgements[0]
        assert (
            command.concern_id == urgent and command.agency_id == MAPPA and command.referral_id == referral_id
        )
        assert command.note == "passed to the offender manager"
        raw = b"".join(r.value for r in stack.records(CIRCLES_COMMANDS.name))
        assert b"passed to the offender manager" not in raw and SUMMARY.encode() not in raw  # sealed there

        # the circles service confirms it (at the time asked): still the same, and nothing more written
        stack.publish(
            ConcernAcknowledged(
                **fact_base(referral_id, MAPPA),
                concern_id=urgent,
                level=ConcernLevel.URGENT,
                acknowledged_at=command.requested_at,
                acknowledged_by=MAPPA,
                raised_at=command.requested_at - timedelta(minutes=1),
            )
        )
        acknowledged_at = datetime.fromisoformat(first.json()["acknowledged_at"])
        assert acknowledged_at == command.requested_at
        wait_drained(stack.bootstrap, stack.prefix, "referrals")
        third = mappa.post(f"/v1/concerns/{urgent}/acknowledgement", json={})
        assert (
            third.status_code == 200
            and datetime.fromisoformat(third.json()["acknowledged_at"]) == acknowledged_at
        )
        assert len([c for c in stack.commands() if isinstance(c, AcknowledgeConcern)]) == 1
        assert [c["concern_id"] for c in mappa.get("/v1/concerns?state=acknowledged").json()["concerns"]] == [
            str(urgent)
        ]

        # the police's urgent concern is escalated; a review of the circle; the circle ends early
        stack.publish(
            ConcernEscalated(
                **fact_base(theirs, POLICE),
                concern_id=police_concern,
                level=ConcernLevel.URGENT,
                raised_at=now,
                escalated_at=now + timedelta(hours=4),
            ),
            ReviewRecorded(
                **fact_base(referral_id, MAPPA),
                review_id=uuid.uuid4(),
                held_on=date.today(),
                next_review_due=date.today() + timedelta(days=90),
            ),
            CircleEnded(
                **fact_base(referral_id, MAPPA),
                outcome=CircleOutcome.ENDED_EARLY,
                reason=EndReason.MOVED_AWAY,
                ended_on=date.today(),
                volunteer_ids=["vol-001"],
                ended_at=now,
            ),
        )
        wait_until(
            lambda: mappa.get(f"/v1/referrals/{referral_id}").json()["status"] == "circle_ended",
            what="the circle ended",
        )
        ended = mappa.get(f"/v1/referrals/{referral_id}").json()["circle"]
        assert (
            ended["status"] == "ended"
            and ended["outcome"] == "ended_early"
            and ended["end_reason"] == "moved_away"
        )
        assert ended["next_review_due"] is None and ended["open_concerns"] == 1  # the routine one
        listed_ended = mappa.get("/v1/referrals", params={"status": "circle_ended"}).json()["referrals"]
        assert [r["referral_id"] for r in listed_ended] == [str(referral_id)]
        escalated = police.get(f"/v1/concerns/{police_concern}").json()
        assert escalated["escalated_at"] is not None and escalated["state"] == "open"

    # webhooks: each step, signed with the agency's own secret, with ids, level and link, never the text
    def circle_hooks(agency_id: str) -> list[dict[str, Any]]:
        bodies = [json.loads(d.body) for d in stack.hooks.received(agency_id, ok=True)]
        return [b for b in bodies if b["event_type"] in CIRCLE_TEMPLATES]

    wait_until(lambda: len(circle_hooks(MAPPA)) >= 5, what="the circle's webhooks to the agency")
    wait_until(lambda: len(circle_hooks(POLICE)) >= 2, what="the police concern's webhooks")
    wait_drained(stack.bootstrap, stack.prefix, "notifications")  # a message too many would be here by now
    mappa_hooks = circle_hooks(MAPPA)
    assert sorted(b["event_type"] for b in mappa_hooks) == sorted(
        ["meeting_recorded", "concern_raised", "concern_raised", "review_recorded", "circle_ended"]
    )
    assert sorted(b["event_type"] for b in circle_hooks(POLICE)) == ["concern_escalated", "concern_raised"]
    for delivery in stack.hooks.received(MAPPA, ok=True):
        assert verify_signature(
            delivery.headers["X-Circles-Signature"], delivery.body, stack.secrets[MAPPA], now=time.time()
        )
        assert not verify_signature(
            delivery.headers["X-Circles-Signature"], delivery.body, stack.secrets[POLICE], now=time.time()
        )
    concerns = {b["concern_id"]: b for b in mappa_hooks if b["event_type"] == "concern_raised"}
    assert set(concerns) == {str(urgent), str(routine)}
    assert concerns[str(urgent)]["level"] == "urgent" and concerns[str(routine)]["level"] == "routine"
    assert concerns[str(urgent)]["link"] == f"https://api.circles.test/v1/concerns/{urgent}"
    for body in mappa_hooks:
        assert body["referral_id"] == str(referral_id) and body["circle_id"] == circle_id_of(referral_id)
        assert body["agency_reference"] == "MAPPA-C-1"
    (end,) = (b for b in mappa_hooks if b["event_type"] == "circle_ended")
    assert end["status"] == "circle_ended" and end["reason_codes"] == ["ended_early", "moved_away"]

    # emails: the urgent concern and the escalation, to the agency's contact and the coordinator; not the
    # routine concern, nor the other steps
    circle_mails = [m for m in stack.smtp.received() if m.template in CIRCLE_TEMPLATES]
    assert sorted((m.template, m.recipients) for m in circle_mails) == [
        ("concern_escalated", (COORDINATOR,)),
        ("concern_escalated", ("police@agencies.example.org",)),
        ("concern_raised", (COORDINATOR,)),
        ("concern_raised", (COORDINATOR,)),
        ("concern_raised", (MAPPA_MAIL,)),
        ("concern_raised", ("police@agencies.example.org",)),
    ]
    for mail in circle_mails:
        assert "urgent" in str(mail.message["Subject"])
    to_mappa = next(m for m in circle_mails if m.recipients == (MAPPA_MAIL,))
    assert f"https://api.circles.test/v1/concerns/{urgent}" in to_mappa.text()
    assert stack.smtp.duplicates() == {} and stack.hooks.duplicates() == {}

    # no summary, minutes or note anywhere a message or another service could see it
    everything = [d.body for d in stack.hooks.received()] + [m.raw for m in stack.smtp.received()]
    for topic in (
        CIRCLES_EVENTS.name,
        NOTIFICATION_REQUESTS.name,
        NOTIFICATION_LOG.name,
        REFERRALS_CIRCLES.name,
    ):
        everything += [r.value or b"" for r in stack.records(topic)]
    for secret in (SUMMARY, MINUTES, "passed to the offender manager"):
        assert not any(secret.encode() in value for value in everything), secret


def test_an_erased_referral_takes_its_circle_and_concern_summaries_with_it(stack: Stack) -> None:
    referral_id = formed_circle(stack, MAPPA, "MAPPA-C-ERASE")
    concern_id = raise_concern(stack, referral_id, MAPPA, ConcernLevel.ROUTINE)
    with stack.client(MAPPA) as mappa:
        wait_until(
            lambda: mappa.get(f"/v1/concerns/{concern_id}").json().get("summary") == SUMMARY,
            what="the concern readable",
        )
        run_cli(stack.env, "erase", "referral", str(referral_id), "--reason", "DSR-TEST-1")
        wait_until(
            lambda: mappa.get(f"/v1/concerns/{concern_id}").status_code == 404, what="the concern gone"
        )
        # a fact still on its way after the erasure does not bring the circle back
        stack.publish(
            ReviewRecorded(
                **fact_base(referral_id, MAPPA),
                review_id=uuid.uuid4(),
                held_on=date.today(),
                next_review_due=date.today() + timedelta(days=90),
            )
        )
        wait_drained(stack.bootstrap, stack.prefix, "referrals")
        view = mappa.get(f"/v1/referrals/{referral_id}").json()
        assert view["erased_at"] is not None and view["circle"] is None
        assert str(concern_id) not in mappa.get("/v1/concerns").text
    tombstones = [
        r
        for r in stack.records(REFERRALS_CIRCLES.name)
        if r.key == str(referral_id).encode() and r.value is None
    ]
    assert tombstones, "the circle's entry is deleted from the table's changelog"


def test_with_the_circles_worker_a_concern_raised_by_the_cli_is_read_and_acknowledged_over_the_api(
    live: Stack, tmp_path: Path
) -> None:
    """The whole loop: the coordinator raises an urgent concern with the CLI; the agency is told (webhook,
    email), reads the summary and acknowledges it over the API; the circles worker accepts the partner API's
    command (the concern will not be escalated) and its fact confirms the acknowledgement."""
    with live.client(MAPPA) as mappa:
        response = mappa.post("/v1/referrals", json=submission_body(agency_reference="MAPPA-LIVE-1"))
        referral_id = uuid.UUID(response.json()["referral_id"])
        wait_until(
            lambda: mappa.get(f"/v1/referrals/{referral_id}").json()["status"] == "eligible",
            what="the referral assessed",
        )
        formed = sample(CircleFormed).model_copy(
            update={"referral_id": referral_id, "agency_id": MAPPA, "formed_at": datetime.now(UTC)}
        )
        live.publish(formed, source="/circles/matching/worker")
        wait_until(
            lambda: mappa.get(f"/v1/referrals/{referral_id}").json()["circle"] is not None,
            what="the circle activated by the circles worker",
        )
        summary_file = tmp_path / "summary.txt"
        summary_file.write_text(SUMMARY)
        circle = circle_id_of(referral_id)
        raised = json.loads(
            run_cli(
                live.env,
                "circle",
                "concern",
                circle,
                "--level",
                "urgent",
                "--summary-file",
                str(summary_file),
                "--json",
            ).stdout
        )
        concern_id = raised["concern_id"]
        wait_until(
            lambda: mappa.get(f"/v1/concerns/{concern_id}").json().get("summary") == SUMMARY,
            what="the summary readable over the API",
        )
        acknowledged = mappa.post(f"/v1/concerns/{concern_id}/acknowledgement", json={"note": "seen"})
        assert acknowledged.status_code == 200 and acknowledged.json()["state"] == "acknowledged"

        def confirmed() -> list[ConcernAcknowledged]:
            return [
                event
                for event in (
                    decode(r.value, r.headers, EVENT_TYPES)[1] for r in live.records(CIRCLES_EVENTS.name)
                )
                if isinstance(event, ConcernAcknowledged)
            ]

        wait_until(lambda: len(confirmed()) == 1, what="the circles worker's ConcernAcknowledged")
        (fact,) = confirmed()
        assert str(fact.concern_id) == concern_id and fact.acknowledged_by == MAPPA
        assert fact.acknowledged_at == datetime.fromisoformat(acknowledged.json()["acknowledged_at"])
        shown = json.loads(run_cli(live.env, "circle", "show", circle, "--json").stdout)
        assert [c["state"] for c in shown["concerns"]] == ["acknowledged"]
        assert live.records(CIRCLES_COMMANDS.dlq) == []  # the partner API's command was taken
        assert mappa.get("/v1/concerns?state=open").json()["concerns"] == []

    wait_until(
        lambda: any(json.loads(d.body)["event_type"] == "concern_raised" for d in live.hooks.received(MAPPA)),
        what="the concern's webhook",
    )
    wait_until(
        lambda: (
            {m.recipients for m in live.smtp.received(template="concern_raised")}
            == {(MAPPA_MAIL,), (COORDINATOR,)}
        ),
        what="the urgent concern's emails",
    )
    messages = [d.body for d in live.hooks.received()] + [m.raw for m in live.smtp.received()]
    assert not any(SUMMARY.encode() in body for body in messages)
