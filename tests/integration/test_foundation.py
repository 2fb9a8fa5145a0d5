"""The foundation against a real broker: the broker itself, the catalogue's topics, every event type
through Kafka, and the stream worker (processing, unit of work, dead letters)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.envelope import Envelope, Event, decode
from schemas.events.referrals import ReassessReferral, ReferralSubmitted
from schemas.topics import EVENT_TYPES, REFERRALS_COMMANDS, SUBJECT_KEYS, TOPICS, topic_of
from services.protection.codec import decode_record
from services.protection.keks import add_kek
from services.protection.sealer import build_sealer
from services.runtime.ids import derive_id
from services.runtime.kafka import Publisher
from services.runtime.settings import RuntimeSettings
from services.runtime.worker import StreamWorker, UnitOfWork
from tests.conftest import leaks
from tests.kafka_broker import local_kafka
from tests.kafka_helpers import consume
from tests.samples import SAMPLES

pytestmark = pytest.mark.integration


def test_the_broker_is_a_real_kafka_jvm_the_project_started(kafka: dict[str, Any]) -> None:
    broker = kafka["local"]
    if broker is None:
        pytest.skip("using an existing cluster or testcontainers, not the project's script")
    command = Path(f"/proc/{broker.pid}/cmdline").read_bytes().split(b"\0")
    assert Path(command[0].decode()).name == "java"
    assert b"kafka.Kafka" in command
    host, port = kafka["bootstrap"].split(":")
    assert local_kafka.answers_metadata(host, int(port))


async def led_partitions(
    admin: AIOKafkaAdminClient, names: list[str], within: float = 30.0
) -> dict[str, int]:
    """Each topic's number of partitions with a leader, once the broker's metadata has them all led (or
    ``within`` seconds have passed). CreateTopics answers when the controller has the topics; the broker's
    metadata can follow a moment later (seen in CI: a fresh topic described with no partitions)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        described = await admin.describe_topics(names)
        led = {t["topic"]: sum(p["leader"] >= 0 for p in t["partitions"]) for t in described}
        unready = [t["topic"] for t in described if t["error_code"] != 0 or not t["partitions"]]
        if not unready and all(led[t["topic"]] == len(t["partitions"]) for t in described):
            return led
        if asyncio.get_running_loop().time() > deadline:
            return led
        await asyncio.sleep(0.2)


async def test_the_catalogue_creates_every_topic_with_its_partitions_and_policy(
    kafka_bootstrap: str, topics: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await led_partitions(admin, [topics + s.name for s in TOPICS])
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics + s.name) for s in TOPICS]
        )
    finally:
        await admin.close()
    for spec in TOPICS:
        assert described[topics + spec.name] == spec.partitions, spec.name
    policies = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in configs
        for resource in response.resources
    }
    for spec in TOPICS:
        assert policies[topics + spec.name]["cleanup.policy"] == spec.cleanup.value, spec.name


def _home(event: type[Event]) -> str:
    """The topic the event is published on; for an event of several topics (a session ended, one topic per
    account kind) the catalogue's first."""
    try:
        return topic_of(event).name
    except LookupError:
        return next(spec.name for spec in TOPICS if event in spec.events)


async def test_every_event_type_round_trips_through_the_broker(
    kafka_bootstrap: str, topics: str, tmp_path: Path
) -> None:
    """Each event type over the real broker, personal fields sealed on the way and opened on return."""
    add_kek(tmp_path / "kek.json")
    settings = RuntimeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topics, data_dir=tmp_path
    )
    sealer = build_sealer(settings, list(SUBJECT_KEYS))
    await sealer.start()
    sent: dict[uuid.UUID, Event] = {}
    try:
        async with Publisher(kafka_bootstrap, "/tests/roundtrip", prefix=topics, sealer=sealer) as publisher:
            for event in SAMPLES.values():
                envelope = publisher.envelope(event, correlation_id="corr-roundtrip")
                await publisher.publish(event, envelope, topic=topics + _home(type(event)))
                sent[envelope.id] = event
        by_topic: dict[str, int] = {}
        for event in sent.values():
            name = topics + _home(type(event))
            by_topic[name] = by_topic.get(name, 0) + 1
        received: dict[uuid.UUID, Event] = {}
        for name, count in by_topic.items():
            for record in await consume(kafka_bootstrap, name, count):
                envelope, event = await decode_record(record.value, record.headers, EVENT_TYPES, sealer)
                assert envelope.correlationid == "corr-roundtrip"
                assert record.key == event.partition_key().encode()
                if event.data_subject() is not None:
                    assert leaks(record.value.decode()) == [], event.event_type
                received[envelope.id] = event
    finally:
        await sealer.stop()
    assert received == sent
    assert {type(e) for e in received.values()} == set(EVENT_TYPES.values())


async def test_the_worker_processes_in_a_unit_of_work_and_dead_letters_the_malformed(
    kafka_bootstrap: str, topics: str, tmp_path: Path
) -> None:
    """A stream worker on the real broker: a good command yields an output event; a malformed record and a
    record the handler refuses land on <topic>.dlq with the original bytes and the reason; so does a record
    with neither key nor value (aiokafka's send() refuses to copy one: the worker crashed on it)."""
    settings = RuntimeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topics, data_dir=tmp_path
    )
    worker = StreamWorker("runtime-test", settings)
    outputs = topics + topic_of(ReferralSubmitted).name

    async def handler(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, ReassessReferral)
        if event.as_of.year < 2000:
            raise KeyError("Testy Fictionalperson")  # an unexpected failure: dead-lettered, message withheld
        uow.emit(
            SAMPLES[ReferralSubmitted],
            outputs,
            event_id=derive_id(envelope.id, "out"),
            correlation_id=envelope.correlationid,
            cause=envelope,
        )

    worker.route(REFERRALS_COMMANDS, handler)
    good = ReassessReferral(referral_id=uuid.uuid4(), as_of="2026-12-01")
    refused = ReassessReferral(referral_id=uuid.uuid4(), as_of="1999-01-01")
    async with Publisher(kafka_bootstrap, "/tests", prefix=topics) as publisher:
        good_envelope = publisher.envelope(good, correlation_id="corr-good")
        await publisher.publish(good, good_envelope)
        await publisher.publish(refused, publisher.envelope(refused, correlation_id="corr-refused"))
        await publisher.send_raw(
            topics + REFERRALS_COMMANDS.name, b"{not json", key=b"k", headers=[("ce_id", b"x")]
        )
        await publisher.send_raw(topics + REFERRALS_COMMANDS.name, None, key=None)

    running = asyncio.create_task(worker.run())
    try:
        out = await consume(kafka_bootstrap, outputs, 1)
        dead = await consume(kafka_bootstrap, topics + REFERRALS_COMMANDS.dlq, 3)
    finally:
        worker.stop()
        await running

    envelope, _ = decode(out[0].value, out[0].headers, EVENT_TYPES)
    assert envelope.id == derive_id(good_envelope.id, "out")
    assert envelope.causationid == good_envelope.id and envelope.correlationid == "corr-good"
    reasons = {record.value: dict(record.headers) for record in dead}
    malformed = reasons[b"{not json"]
    assert b"CloudEvents headers invalid" in malformed["dlq_error"]
    assert malformed["dlq_service"] == b"runtime-test" and malformed["ce_id"] == b"x"
    assert malformed["dlq_topic"] == (topics + REFERRALS_COMMANDS.name).encode()
    empty = next(record for record in dead if record.value is None)
    assert empty.key is None and b"CloudEvents headers invalid" in dict(empty.headers)["dlq_error"]
    refused_headers = next(h for v, h in reasons.items() if v not in (b"{not json", None))
    assert refused_headers["dlq_error"].startswith(b"KeyError at test_foundation.py:")
    assert b"Testy" not in refused_headers["dlq_error"]
    assert json.loads(next(v for v in reasons if v not in (b"{not json", None)))["as_of"] == "1999-01-01"


async def test_batch_routes_write_through_and_dead_letter_single_items(
    kafka_bootstrap: str, topics: str, tmp_path: Path
) -> None:
    """A batch handler sees the batch's decoded items together, writes an intent record before its effect
    (visible on the changelog at once), dead-letters one item, and stages the rest for commit."""
    from pydantic import BaseModel

    from schemas.topics import NOTIFICATION_LOG, NOTIFICATION_REQUESTS
    from services.runtime.worker import Item
    from tests.kafka_helpers import consume_all

    class Note(BaseModel):
        state: str

    settings = RuntimeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topics, data_dir=tmp_path
    )
    worker = StreamWorker("batch-test", settings)
    log_table = worker.table("log", Note, NOTIFICATION_LOG)
    seen: list[int] = []
    from schemas.events.notifications import DeliveryRetryDue

    async def handler(uow: UnitOfWork, items: list[Item]) -> None:
        seen.append(len(items))
        for item in items:
            assert isinstance(item.event, DeliveryRetryDue)
            key = str(item.event.notification_id)
            if item.event.attempt == 99:
                worker.dead_letter(uow, item, "attempt 99 is refused")
                continue
            await uow.write_through(log_table, key, Note(state="intent"))
            uow.put(log_table, key, Note(state="done"))

    worker.route_batch(NOTIFICATION_REQUESTS, handler)
    retries = [DeliveryRetryDue(notification_id=uuid.uuid4(), attempt=n) for n in (2, 3, 99)]
    async with Publisher(kafka_bootstrap, "/tests", prefix=topics) as publisher:
        for retry in retries:
            await publisher.publish(retry, publisher.envelope(retry, correlation_id="c"))
    running = asyncio.create_task(worker.run())
    try:
        dead = await consume(kafka_bootstrap, topics + NOTIFICATION_REQUESTS.dlq, 1)
        await consume(kafka_bootstrap, topics + NOTIFICATION_LOG.name, 4)  # two intents, two results
    finally:
        worker.stop()
        await running
    assert sum(seen) == 3 and dict(dead[0].headers)["dlq_error"] == b"attempt 99 is refused"
    changelog = await consume_all(kafka_bootstrap, topics + NOTIFICATION_LOG.name)
    states = [(record.key.decode(), json.loads(record.value)["state"]) for record in changelog]
    for retry in retries[:2]:
        key = str(retry.notification_id)
        assert [state for k, state in states if k == key] == ["intent", "done"]
    assert [state for k, state in states if k == str(retries[2].notification_id)] == []  # dead-lettered


async def test_a_worker_started_before_its_topics_exist_takes_them_once_they_are_made(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    """Processes start right after the topics are made (``make run``, the tests, a deployment's topic job
    beside its pods): a group joined while the broker's metadata lacked a topic was given none of its
    partitions until its next metadata refresh, minutes later, and processed nothing meanwhile."""
    from services.runtime.kafka import create_topics

    settings = RuntimeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path
    )
    worker = StreamWorker("early-test", settings)
    outputs = prefix + topic_of(ReferralSubmitted).name

    async def handler(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        out_id = derive_id(envelope.id, "out")
        uow.emit(
            SAMPLES[ReferralSubmitted], outputs, event_id=out_id, correlation_id="corr-early", cause=envelope
        )

    worker.route(REFERRALS_COMMANDS, handler)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(2)  # the worker is up and waiting: its topics do not exist yet
        assert not running.done()
        await create_topics(kafka_bootstrap, prefix=prefix)
        command = ReassessReferral(referral_id=uuid.uuid4(), as_of="2026-12-01")
        async with Publisher(kafka_bootstrap, "/tests", prefix=prefix) as publisher:
            envelope = publisher.envelope(command, correlation_id="corr-early")
            await publisher.publish(command, envelope)
        out = await consume(kafka_bootstrap, outputs, 1, seconds=30)
    finally:
        worker.stop()
        await running
    assert decode(out[0].value, out[0].headers, EVENT_TYPES)[0].id == derive_id(envelope.id, "out")
