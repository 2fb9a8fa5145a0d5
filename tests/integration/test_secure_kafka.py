"""The pipeline over a TLS + SASL/SCRAM broker that enforces the ACLs derived from the catalogue.

Its own broker (``LocalKafka(secure=True)``), topics created and ACLs applied by the admin super-user; every
process signs in as its own service's principal and the ``circles`` command as the operations principal. A
referral goes in over HTTP and comes out as a decision, a proposal and emails to a real SMTP server; personal
fields are sealed with data keys on the keys topics, which only the principals that seal or open them may
use (the ``circles`` command seals volunteers and coordinator accounts; the coordinator page opens account
names). Then the refusals: a service writing another's topic or data keys, reading a topic it does not
consume or another service's data keys, joining another's group, a wrong password, a plaintext client, and
an agency system submitting over Kafka in another agency's name (every agency system signs in as the one
``circles-partner-agencies`` principal: what the worker trusts is the agency's own signing key).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from schemas.common import Gender
from schemas.events.volunteers import ChangeVolunteer, VolunteerRecord
from schemas.topics import (
    COORDINATOR_KEYS,
    MATCHING_EVENTS,
    MATCHING_POOL,
    REFERRAL_EVENTS,
    REFERRAL_KEYS,
    REFERRALS_COMMANDS,
    REFERRALS_INBOUND,
    TOPICS,
)
from services.ops.status import pipeline_status
from services.runtime.kafka import Publisher, create_topics
from services.runtime.kafka_security import KafkaSecurity, security_options, using
from services.security.acls import acls, managed
from services.security.admin import apply_acls
from tests.conftest import leaks
from tests.kafka_broker import LocalKafka
from tests.notification_sinks import SmtpSink, wait_until
from tests.processes import (
    ServiceProcess,
    free_port,
    read_sealed_table,
    run_cli,
    sealer_for,
    service_env,
)
from tests.samples import inbound_record, submission_body, volunteer_record

pytestmark = pytest.mark.integration
AGENCY = "mappa-humberside"
AGENCY_EMAIL = "mappa@agencies.example.org"
VICTIM = "police-humberside"
COORDINATOR = "coordinator@circles.example.org"
ACCOUNT, ACCOUNT_NAME, PASSWORD = "secure-coordinator", "Secure Coordinator", "synthetic-pass-phrase-7"
PROCESSES = (
    "referrals-api",
    "referrals-worker",
    "matching-worker",
    "notifications-worker",
    "coordinator-worker",
    "coordinator-web",
    "circles-worker",
)


@dataclass
class Secure:
    """The secure broker's facts (``security.json``)."""

    bootstrap: str
    facts: dict[str, Any]

    def security(self, user: str, password: str | None = None) -> KafkaSecurity:
        if password is None:
            admin = self.facts["admin"]
            password = admin["password"] if user == admin["username"] else self.facts["users"][user]
        return KafkaSecurity(
            protocol="SASL_SSL", username=user, password=SecretStr(password), ca_file=self.facts["ca_file"]
        )

    @property
    def admin(self) -> KafkaSecurity:
        return self.security(self.facts["admin"]["username"])

    def env(self, user: str) -> dict[str, str]:
        """What a process signing in as ``user`` is given (``CIRCLES_KAFKA_*``)."""
        return {
            "CIRCLES_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CIRCLES_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CIRCLES_KAFKA_USERNAME": user,
            "CIRCLES_KAFKA_PASSWORD": self.facts["users"][user],
            "CIRCLES_KAFKA_CA_FILE": self.facts["ca_file"],
        }


@dataclass
class Stack:
    secure: Secure
    prefix: str
    env: dict[str, str]
    api_url: str
    web_url: str
    api_key: str
    signing_key: str
    victim_api_key: str
    smtp: SmtpSink
    processes: dict[str, ServiceProcess]

    def cli(self, *args: str, input: str | None = None) -> str:
        return run_cli({**self.env, **self.secure.env("circles-ops")}, *args, input=input).stdout


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    broker = LocalKafka(data_dir=tmp_path_factory.mktemp("secure-kafka"), secure=True)
    broker.start()
    try:
        yield Secure(broker.bootstrap_servers, dict(broker.security()))
    finally:
        broker.stop()


def _service(process: str) -> str:
    return "circles-" + process.rsplit("-", 1)[0]


@pytest.fixture(scope="module")
def stack(secure: Secure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."

    async def install() -> None:
        with using(secure.admin):
            await create_topics(secure.bootstrap, TOPICS, prefix=prefix)
            await apply_acls(secure.bootstrap, acls(prefix), ours=managed(prefix))

    asyncio.run(install())
    data: Path = tmp_path_factory.mktemp("secure")
    clock = data / "now"
    clock.write_text("2026-11-24T10:00:00+00:00")
    smtp = SmtpSink().start()
    port, web_port = free_port(), free_port()
    env = service_env(
        secure.bootstrap,
        prefix,
        data,
        CIRCLES_CLOCK=f"file:{clock}",
        CIRCLES_API_PORT=str(port),
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
        CIRCLES_PARTNER_API_URL="https://api.circles.test",
        CIRCLES_COORDINATOR_URL="https://coordinator.circles.test",
        CIRCLES_DIGEST_ENABLED="false",
        CIRCLES_WEB_PORT=str(web_port),
        CIRCLES_SESSION_SECRET="synthetic-session-secret",
        CIRCLES_OPERATIONS_POLL_S="1",
    )
    urls = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    stack = Stack(secure, prefix, env, *urls, "", "", "", smtp, {})
    added = stack.cli("agency", "add", AGENCY, "--name", "MAPPA", "--contact-email", AGENCY_EMAIL, "--json")
    stack.api_key, stack.signing_key = json.loads(added)["api_key"], json.loads(added)["kafka_signing_key"]
    victim = stack.cli("agency", "add", VICTIM, "--name", "Humberside Police", "--kind", "police", "--json")
    stack.victim_api_key = json.loads(victim)["api_key"]
    # seals the account's name with a coordinator data key, which the command writes and the page only reads
    stack.cli(
        "coordinator", "add", ACCOUNT, "--name", ACCOUNT_NAME, "--password-stdin", input=f"{PASSWORD}\n"
    )
    for process in PROCESSES:
        own = {**env, **secure.env(_service(process))}
        stack.processes[process] = ServiceProcess(process, own, name=f"secure-{process}").start()
    try:
        for process, running in stack.processes.items():
            if process == "referrals-api":
                running.wait_http(f"{stack.api_url}/ready", seconds=90)
            elif process == "coordinator-web":
                running.wait_http(f"{stack.web_url}/ready", seconds=90)
            else:
                running.wait_for_log("worker_ready", seconds=90)
        yield stack
    finally:
        for running in stack.processes.values():
            running.stop()
        smtp.stop()
    logs = "".join(running.logs() for running in stack.processes.values())
    assert leaks(logs) == []
    assert "Authoriz" not in logs, "a process was refused by the broker"
    assert secure.facts["users"]["circles-referrals"] not in logs


def _register_volunteers(stack: Stack) -> None:
    """As the ``circles volunteer add`` command does, signed in as the operations principal: personal fields
    sealed with volunteer data keys the command writes."""

    async def send() -> None:
        sealer = sealer_for(stack.env, ["volunteer"])
        await sealer.start()
        try:
            async with Publisher(
                stack.secure.bootstrap, "/circles/matching/cli", prefix=stack.prefix, sealer=sealer
            ) as out:
                for number, gender in enumerate([Gender.FEMALE, Gender.MALE] * 3):
                    volunteer = volunteer_record(f"secure-vol-{number}", gender=gender, max_circles=1)
                    command = ChangeVolunteer(
                        volunteer_id=volunteer.volunteer_id,
                        change="registered",
                        registration=volunteer,
                        requested_by="coordinator",
                    )
                    await out.publish(command, out.envelope(command, f"volunteer-{volunteer.volunteer_id}"))
        finally:
            await sealer.stop()

    with using(stack.secure.security("circles-ops")):
        asyncio.run(send())


def _pool(stack: Stack) -> dict[str, VolunteerRecord]:
    with using(stack.secure.admin):
        return asyncio.run(read_sealed_table(stack.env, MATCHING_POOL.name, VolunteerRecord))


def test_the_pipeline_runs_with_each_service_signed_in_as_itself(stack: Stack) -> None:
    _register_volunteers(stack)
    wait_until(lambda: len(_pool(stack)) == 6, what="six volunteers in the matcher's pool")
    listed = json.loads(stack.cli("volunteer", "list", "--json"))
    assert sorted(v["volunteer_id"] for v in listed) == [f"secure-vol-{n}" for n in range(6)]
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=10) as client:
        response = client.post("/v1/referrals", json=submission_body(agency_reference="SECURE-1"))
        assert response.status_code == 202, response.text
        referral_id = response.json()["referral_id"]
        deadline = time.monotonic() + 60
        while (view := client.get(f"/v1/referrals/{referral_id}").json())["status"] != "proposed":
            assert time.monotonic() < deadline, view
            time.sleep(0.2)
    assert view["decision"]["outcome"] == "eligible"
    proposals = json.loads(stack.cli("proposal", "list", "--json"))
    assert [p["referral_id"] for p in proposals] == [referral_id]
    wait_until(lambda: bool(stack.smtp.received(to=AGENCY_EMAIL)), what="the agency's email")
    wait_until(lambda: bool(stack.smtp.received(to=COORDINATOR)), what="the coordinator's email")

    with using(stack.secure.security("circles-ops")):
        status = asyncio.run(pipeline_status(stack.secure.bootstrap, stack.prefix))
    assert {s.service: s.active_members for s in status.services} == {
        "referrals": 1,
        "matching": 1,
        "notifications": 1,
        "coordinator": 1,
        "circles": 1,
    }
    assert status.topic(REFERRALS_COMMANDS.name).last_event_age_s is not None


def test_the_coordinator_page_sees_offsets_but_not_other_services_private_topics(stack: Stack) -> None:
    with using(stack.secure.security("circles-coordinator")):
        status = asyncio.run(pipeline_status(stack.secure.bootstrap, stack.prefix))
    assert {s.service for s in status.services} == {
        "referrals",
        "matching",
        "notifications",
        "coordinator",
        "circles",
    }
    commands = status.topic(REFERRALS_COMMANDS.name)
    assert commands.end_offset >= 1 and commands.last_event_age_s is None  # described, never read
    assert status.topic(REFERRAL_EVENTS.name).last_event_age_s is not None  # the coordinator consumes it


def test_the_coordinator_page_opens_account_names_with_keys_only_the_command_writes(stack: Stack) -> None:
    with httpx.Client(base_url=stack.web_url, timeout=10) as client:
        refused = client.post("/sign-in", data={"account": ACCOUNT, "password": "not the password"})
        assert refused.status_code == 401
        signed_in = client.post("/sign-in", data={"account": ACCOUNT, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        wait_until(
            lambda: "Sampled" in client.get("/operations").text,
            what="the operations page's first sample, taken as the coordinator's principal",
        )
        page = client.get("/operations").text
    assert f"Sign out ({ACCOUNT_NAME})" in page


def _producer(stack: Stack, user: str, password: str | None = None) -> AIOKafkaProducer:
    with using(stack.secure.security(user, password)):
        return AIOKafkaProducer(
            bootstrap_servers=stack.secure.bootstrap, enable_idempotence=True, **security_options()
        )


async def _consume_once(stack: Stack, user: str, topic: str, group: str | None = None) -> None:
    with using(stack.secure.security(user)):
        consumer = AIOKafkaConsumer(
            stack.prefix + topic,
            bootstrap_servers=stack.secure.bootstrap,
            group_id=group and stack.prefix + group,
            auto_offset_reset="earliest",
            **security_options(),
        )
    try:
        await consumer.start()
        async with asyncio.timeout(20):
            while True:
                await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


def test_a_service_may_not_write_what_it_does_not_own_nor_data_keys_it_only_opens(stack: Stack) -> None:
    async def attempt() -> None:
        producer = _producer(stack, "circles-referrals")
        await producer.start()
        try:
            await producer.send_and_wait(stack.prefix + REFERRAL_EVENTS.name, b"{}", key=b"own-topic")
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(stack.prefix + MATCHING_EVENTS.name, b"{}", key=b"forged")
        finally:
            await producer.stop()
        producer = _producer(stack, "circles-coordinator")  # reads its data keys; only the command writes
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(stack.prefix + COORDINATOR_KEYS.name, None, key=b"a-key-id")
        finally:
            await producer.stop()

    asyncio.run(attempt())


def test_agency_systems_may_submit_but_not_read_submissions(stack: Stack) -> None:
    async def attempt() -> None:
        producer = _producer(stack, "circles-partner-agencies")
        await producer.start()
        try:
            await producer.send_and_wait(stack.prefix + REFERRALS_INBOUND.name, b"not json", key=b"ref")
        finally:
            await producer.stop()
        with pytest.raises(TopicAuthorizationFailedError):
            await _consume_once(stack, "circles-partner-agencies", REFERRALS_INBOUND.name)

    asyncio.run(attempt())

    def dead_lettered() -> bool:  # by the referrals worker, read by the circles command
        queues = json.loads(stack.cli("ops", "dlq", "list", "--json"))
        return any(q["topic"] == REFERRALS_INBOUND.dlq and q["depth"] == 1 for q in queues)

    wait_until(dead_lettered, what="the malformed submission in its dead-letter queue")


def test_an_agency_system_cannot_submit_over_kafka_in_another_agencys_name(stack: Stack) -> None:
    """Agency A's system (the shared agency principal, A's own signing key) writes one submission as itself
    and two claiming to be agency B in ``ce_source``: one signed with A's key, one unsigned. A's goes
    through; both forgeries are dead-lettered with their reason, and B sees no referral."""
    own = inbound_record(
        AGENCY, stack.signing_key, submission_body(agency_reference="SECURE-KAFKA-1"), "kafka-own"
    )
    forged = inbound_record(
        VICTIM, stack.signing_key, submission_body(agency_reference="FORGED-1"), "kafka-forged"
    )
    unsigned = inbound_record(VICTIM, None, submission_body(agency_reference="FORGED-2"), "kafka-unsigned")

    async def produce() -> None:
        producer = _producer(stack, "circles-partner-agencies")
        await producer.start()
        try:
            for key, value, headers in (forged, unsigned, own):
                await producer.send_and_wait(
                    stack.prefix + REFERRALS_INBOUND.name, value, key=key, headers=headers
                )
        finally:
            await producer.stop()

    asyncio.run(produce())
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        mine = {"Authorization": f"Bearer {stack.api_key}"}

        def accepted() -> bool:
            listed = client.get("/v1/referrals", headers=mine).json()["referrals"]
            return "SECURE-KAFKA-1" in {r["agency_reference"] for r in listed}

        wait_until(accepted, what="agency A's own signed Kafka submission, accepted")

        def reasons() -> dict[str, int]:
            queues = json.loads(stack.cli("ops", "dlq", "list", "--json"))
            return next((q["by_reason"] for q in queues if q["topic"] == REFERRALS_INBOUND.dlq), {})

        forged_reason = (
            f"signature refused: signature does not verify with the key of agency {VICTIM!r} (ce_source): "
            "forged, altered or signed with another key"
        )
        unsigned_reason = "signature refused: unsigned: no circles-signature header"
        wait_until(
            lambda: {forged_reason, unsigned_reason} <= {r.split(" (every")[0] for r in reasons()},
            what="both forged submissions dead-lettered with their reasons",
        )
        victims = client.get("/v1/referrals", headers={"Authorization": f"Bearer {stack.victim_api_key}"})
        assert victims.status_code == 200 and victims.json()["referrals"] == []


def test_a_service_may_not_read_unconsumed_topics_or_others_data_keys_nor_join_another_group(
    stack: Stack,
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_consume_once(stack, "circles-notifications", REFERRALS_COMMANDS.name))
    # nor another service's data keys (the command line seals minutes and concern summaries with them)
    for user in ("circles-matching", "circles-notifications"):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_consume_once(stack, user, REFERRAL_KEYS.name))
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(_consume_once(stack, "circles-matching", REFERRAL_EVENTS.name, group="circles-referrals"))


def test_a_wrong_password_or_a_plaintext_client_is_refused(stack: Stack) -> None:
    async def attempt(password: str | None) -> None:
        if password is None:
            producer = AIOKafkaProducer(bootstrap_servers=stack.secure.bootstrap, request_timeout_ms=5000)
        else:
            producer = _producer(stack, "circles-referrals", password)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(attempt("not-the-password"))
    with pytest.raises(KafkaConnectionError):
        asyncio.run(attempt(None))
