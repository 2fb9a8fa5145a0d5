"""Dead letters: list the queues, show their records (never the payload unless asked), replay them.

Replay republishes each dead letter's original key, value and headers (without the ``dlq_*`` headers) to its
original topic, oldest first, and commits its progress in the consumer group ``<prefix>circles-ops-replay``
(offsets only: the group is never joined), so a second replay republishes nothing already replayed. Records
dead-lettered again during a replay land after the replay's end offset and wait for the next one.

Nothing is lost, nothing is done twice: progress is committed only after the broker acknowledged the
republished records, so a crash can republish a record at most once more, and that is harmless because every
consumer is idempotent on the event id (``ce_id``), which the replay keeps.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, Field

from schemas.topics import BY_NAME, TopicSpec
from services.ops.broker import Broker, read_ranges
from services.ops.topology import DEAD_LETTER_TOPICS, REPLAY_GROUP, source_of
from services.runtime.deadletter import VALUE_DROPPED, original_headers
from services.runtime.kafka import producer as make_producer
from services.runtime.kafka import send_record
from services.runtime.kafka_security import security_options

MAX_COUNTED = 10_000
"""``list`` reads at most this many records of each queue to count reasons."""
CHUNK = 200
"""Replay waits for acknowledgements and commits its progress every this many records."""


class DeadLetterQueue(BaseModel):
    topic: str
    source_topic: str
    depth: int = Field(description="Records in the queue (retained: 90 days)")
    pending: int = Field(description="Records not yet replayed")
    oldest_at: datetime | None
    newest_at: datetime | None
    by_reason: dict[str, int] = Field(description="dlq_error → count, over the counted records")
    counted: int
    truncated: bool = Field(description=f"True when only the first {MAX_COUNTED} records were counted")


class DeadLetter(BaseModel):
    """One dead letter's metadata: ids and the reason, never its content (it may hold personal data)."""

    topic: str
    partition: int
    offset: int
    time: datetime
    dlq_error: str | None
    dlq_service: str | None
    dlq_time: str | None
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    ce_type: str | None
    ce_id: str | None
    replayed: bool
    payload: str | None = Field(default=None, description="Only with --payload: the record's value")


class Skipped(BaseModel):
    offset: int
    reason: str


class ReplayReport(BaseModel):
    topic: str
    dry_run: bool
    already_replayed: int = Field(description="Records before this replay's start (replayed earlier)")
    replayed: int
    republished_to: dict[str, int]
    skipped: list[Skipped]
    first_offset: int | None
    next_offset: int = Field(description="Where the next replay starts")


def resolve(name: str) -> TopicSpec:
    """A dead-letter topic named by itself (``x.v1.dlq``) or by its source topic (``x.v1``), without the
    topic prefix. LookupError says what exists."""
    spec = BY_NAME.get(name) or BY_NAME.get(f"{name}.dlq")
    if spec is not None and not spec.dead_letter:
        spec = BY_NAME.get(spec.dlq)
    if spec is None or not spec.dead_letter:
        raise LookupError(f"no dead-letter topic {name!r}: `circles ops dlq list` shows them")
    return spec


def _headers(record: Any) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in record.headers or () if value is not None}


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _time(record: Any) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


async def list_queues(bootstrap_servers: str, prefix: str = "") -> list[DeadLetterQueue]:
    """Every dead-letter topic of the catalogue with its depth, age range and reasons."""
    async with Broker(bootstrap_servers) as broker:
        replayed = await broker.committed(prefix + REPLAY_GROUP)
        layout = await broker.partitions(prefix + spec.name for spec in DEAD_LETTER_TOPICS)
        beginnings, ends = await broker.offsets([tp for tps in layout.values() for tp in tps])
        queues = []
        for spec in DEAD_LETTER_TOPICS:
            tps = layout[prefix + spec.name]
            ranges = {tp: (beginnings[tp], min(ends[tp], beginnings[tp] + MAX_COUNTED)) for tp in tps}
            reasons: Counter[str] = Counter()
            stamps: list[datetime] = []
            async for record in broker.read(ranges):
                reasons[_headers(record).get("dlq_error", "(no reason given)")] += 1
                stamps.append(_time(record))
            newest = await broker.newest_timestamps({tp: ends[tp] for tp in tps}, beginnings)
            depth = sum(ends[tp] - beginnings[tp] for tp in tps)
            source = source_of(spec.name)
            queues.append(
                DeadLetterQueue(
                    topic=spec.name,
                    source_topic=source.name if source else "",
                    depth=depth,
                    pending=sum(ends[tp] - max(beginnings[tp], replayed.get(tp, 0)) for tp in tps),
                    oldest_at=min(stamps) if stamps else None,
                    newest_at=datetime.fromtimestamp(max(newest.values()) / 1000, UTC) if newest else None,
                    by_reason=dict(reasons.most_common()),
                    counted=sum(reasons.values()),
                    truncated=sum(reasons.values()) < depth,
                )
            )
        return queues


async def show(
    bootstrap_servers: str, prefix: str, name: str, *, limit: int = 50, payload: bool = False
) -> list[DeadLetter]:
    """The newest ``limit`` dead letters of one queue, oldest first."""
    spec = resolve(name)
    async with Broker(bootstrap_servers) as broker:
        replayed = await broker.committed(prefix + REPLAY_GROUP)
        tps = (await broker.partitions([prefix + spec.name]))[prefix + spec.name]
        beginnings, ends = await broker.offsets(tps)
        ranges = {tp: (max(beginnings[tp], ends[tp] - limit), ends[tp]) for tp in tps}
        letters = [_letter(spec.name, record, replayed, payload) async for record in broker.read(ranges)]
    letters.sort(key=lambda letter: (letter.time, letter.partition, letter.offset))
    return letters[-limit:] if limit else []


def _letter(topic: str, record: Any, replayed: dict[TopicPartition, int], payload: bool) -> DeadLetter:
    headers = _headers(record)
    value = record.value.decode(errors="replace") if payload and record.value is not None else None
    return DeadLetter(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        time=_time(record),
        dlq_error=headers.get("dlq_error"),
        dlq_service=headers.get("dlq_service"),
        dlq_time=headers.get("dlq_time"),
        original_topic=headers.get("dlq_topic"),
        original_partition=_int(headers.get("dlq_partition")),
        original_offset=_int(headers.get("dlq_offset")),
        ce_type=headers.get("ce_type"),
        ce_id=headers.get("ce_id"),
        replayed=record.offset < replayed.get(TopicPartition(record.topic, record.partition), 0),
        payload=value,
    )


def destination(spec: TopicSpec, prefix: str, record: Any) -> tuple[str | None, str]:
    """Where a dead letter goes back to, or None and why not: only to the topic it came from, which must be
    the catalogue topic whose dead letters this queue holds."""
    headers = _headers(record)
    original = headers.get("dlq_topic")
    if not original:
        return None, "no dlq_topic header: the original topic is unknown"
    if VALUE_DROPPED in headers:
        return None, f"its value ({headers[VALUE_DROPPED]} bytes) was too large to keep; see dlq_offset"
    source = source_of(spec.name)
    if source is None or original != prefix + source.name:
        return None, f"came from {original}, not from this queue's topic"
    return original, ""


async def replay(bootstrap_servers: str, prefix: str, name: str, *, dry_run: bool = False) -> ReplayReport:
    """Republish the dead letters not yet replayed (see the module docstring)."""
    spec = resolve(name)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=prefix + REPLAY_GROUP,  # for its offsets only: assign(), never subscribe()
        client_id="circles-ops-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_options(),
    )
    producer = make_producer(bootstrap_servers, client_id="circles-ops-replay")
    await consumer.start()
    try:
        await producer.start()
        try:
            return await _replay(bootstrap_servers, consumer, producer, spec, prefix, dry_run)
        finally:
            await producer.stop()
    finally:
        await consumer.stop()


async def _replay(
    bootstrap_servers: str, consumer: Any, producer: Any, spec: TopicSpec, prefix: str, dry_run: bool
) -> ReplayReport:
    topic = prefix + spec.name
    tps = await _partitions(bootstrap_servers, topic)
    consumer.assign(tps)
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)  # the end at the start: what is dead-lettered later waits
    starts = {}
    for tp in tps:
        committed = await consumer.committed(tp)
        starts[tp] = max(beginnings[tp], committed or 0)
    report = ReplayReport(
        topic=spec.name,
        dry_run=dry_run,
        already_replayed=sum(starts[tp] - beginnings[tp] for tp in tps),
        replayed=0,
        republished_to={},
        skipped=[],
        first_offset=min((starts[tp] for tp in tps if starts[tp] < ends[tp]), default=None),
        next_offset=sum(ends[tp] for tp in tps) if not dry_run else sum(starts.values()),
    )
    in_flight: list[Any] = []
    progress: dict[TopicPartition, int] = {}
    ranges = {tp: (starts[tp], ends[tp]) for tp in tps}
    async for record in read_ranges(consumer, ranges, seconds=300):
        target, why = destination(spec, prefix, record)
        if target is None:
            report.skipped.append(Skipped(offset=record.offset, reason=why))
        else:
            report.replayed += 1
            report.republished_to[target] = report.republished_to.get(target, 0) + 1
            if not dry_run:
                headers = original_headers(record.headers or ())
                in_flight.append(
                    await send_record(producer, target, record.value, key=record.key, headers=headers)
                )
        progress[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if not dry_run and len(in_flight) >= CHUNK:
            await _settle(consumer, in_flight, progress)
    if not dry_run:
        await _settle(consumer, in_flight, {tp: ends[tp] for tp in tps if ends[tp] > starts[tp]})
    return report


async def _partitions(bootstrap_servers: str, topic: str) -> list[TopicPartition]:
    async with Broker(bootstrap_servers) as broker:
        return (await broker.partitions([topic]))[topic]


async def _settle(consumer: Any, in_flight: list[Any], progress: dict[TopicPartition, int]) -> None:
    """Wait for the broker to acknowledge what was republished, then commit the replay's progress."""
    for future in in_flight:
        await future
    in_flight.clear()
    if progress:
        await consumer.commit(dict(progress))
