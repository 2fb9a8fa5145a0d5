"""Kafka plumbing: topics from the catalogue, an idempotent publisher, and views of compacted topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import RecordMetadata

from schemas.envelope import Envelope, Event
from schemas.topics import TOPICS, TopicSpec, topic_of
from services.runtime.clock import Clock, SystemClock
from services.runtime.codec import PLAIN, Codec, Erased
from services.runtime.kafka_security import security_options
from services.runtime.logs import get_logger
from services.runtime.metrics import Metrics
from services.runtime.supervision import supervise

log = get_logger(__name__)
V = TypeVar("V")


class TopicMismatch(RuntimeError):
    """An existing topic's partition count differs from the catalogue."""


async def create_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = TOPICS,
    *,
    replication_factor: int = 1,
    prefix: str = "",
) -> list[str]:
    """Create the catalogue's missing topics; check the existing ones. Returns the names created.

    ``prefix`` lets tests run isolated copies of the whole topology on one broker.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="circles-admin", **security_options()
    )
    await admin.start()
    try:
        wanted = {prefix + spec.name: spec for spec in specs}
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, spec.partitions, replication_factor, topic_configs=spec.config)
            for name, spec in wanted.items()
            if name not in existing
        ]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(missing, timeout_ms=30_000)
            for name, code, *_ in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:  # made since the listing: checked below
                    existing.add(name)
                elif code:
                    raise for_code(code)(f"creating {name}")
                else:
                    created.append(name)
        present = [name for name in wanted if name in existing]
        for name, partitions in (await _partition_counts(admin, present)).items():
            if partitions != wanted[name].partitions:
                raise TopicMismatch(
                    f"{name} has {partitions} partitions, the catalogue says "
                    f"{wanted[name].partitions}: recreate it or raise the catalogue's count"
                )
        return created
    finally:
        await admin.close()


async def _partition_counts(
    admin: AIOKafkaAdminClient, topics: list[str], seconds: float = 10
) -> dict[str, int]:
    """Each topic's partition count, as soon as the broker's metadata has its partitions: a topic made a
    moment ago (by another process) is described with none at first."""
    deadline = time.monotonic() + seconds
    while True:
        counts = (
            {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(topics)} if topics else {}
        )
        if all(counts.values()) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.1)


def producer(bootstrap_servers: str, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer with acks from all in-sync replicas."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options, **security_options())


async def send_record(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    partition: int | None = None,
) -> asyncio.Future[RecordMetadata]:
    """``producer.send()``, which also takes a record with neither key nor value (a keyless tombstone: other
    clients write them, and a dead letter or replay copies the original). aiokafka's ``send()`` refuses that
    with an AssertionError, so it goes as a batch of its own, to ``partition`` (default 0)."""
    if key is not None or value is not None:
        future: asyncio.Future[RecordMetadata] = await producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
        return future
    batch = producer.create_batch()
    batch.append(key=None, value=None, timestamp=None, headers=headers)
    batch.close()
    sent: asyncio.Future[RecordMetadata] = await producer.send_batch(batch, topic, partition=partition or 0)
    return sent


FATAL_TO_PRODUCER = (OutOfOrderSequenceNumber, ProducerFenced)
"""Errors that stop aiokafka's producer for good (its sender task ends; every later send raises the same).
OutOfOrderSequenceNumber follows a broker outage longer than ``request_timeout_ms``: a batch that expired
while its partition had no leader took a sequence number with it, so the broker refuses the next ones."""


class RenewingProducer:
    """An idempotent producer (``producer()``) that puts a new one in its place once the one it has failed
    with an error fatal to it (``FATAL_TO_PRODUCER``): the send that meets it fails (a record refused so was
    not written, and the caller answers so that it is sent again), the next send goes through a new producer.
    Without this, a long-lived process (an API, a key store) fails every later write until it is restarted."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer], name: str) -> None:
        self._factory = factory
        self._name = name
        self._current: Any = None  # an AIOKafkaProducer once started (aiokafka has no type hints)
        self._failed: tuple[Any, str] | None = None  # (the producer, the error's name)
        self._renewing = asyncio.Lock()

    async def start(self) -> None:
        self._current = self._factory()
        await self._current.start()

    async def stop(self) -> None:
        if self._current is not None:
            await self._current.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """As ``send_record``; a new producer first if this one has failed for good."""
        if self._failed is not None and self._failed[0] is self._current:
            await self._renew()
        used = self._current
        try:
            future = await send_record(
                used, topic, value, key=key, headers=headers or [], partition=partition
            )
        except FATAL_TO_PRODUCER as error:  # its sender has stopped: every send raises it now
            self._failed = (used, type(error).__name__)
            raise
        future.add_done_callback(lambda done: self._check(used, done))
        return future

    def _check(self, used: Any, done: asyncio.Future[RecordMetadata]) -> None:
        if not done.cancelled() and isinstance(done.exception(), FATAL_TO_PRODUCER):
            self._failed = (used, type(done.exception()).__name__)

    async def _renew(self) -> None:
        async with self._renewing:
            if self._failed is None or self._failed[0] is not self._current:  # renewed by a concurrent send
                return
            failed, error = self._failed
            log.warning("producer_renewed", producer=self._name, error=error)
            fresh = self._factory()
            await fresh.start()  # if this fails too, the next send tries again
            self._current = fresh
            with contextlib.suppress(Exception):  # its batches have failed already: nothing to flush
                async with asyncio.timeout(5):
                    await failed.stop()


class Publisher:
    """Publishes events with their CloudEvents headers and waits for the broker's acknowledgement."""

    def __init__(
        self,
        bootstrap_servers: str,
        source: str,
        *,
        prefix: str = "",
        metrics: Metrics | None = None,
        timeout_s: float | None = None,
        sealer: Codec | None = None,
        linger_ms: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``sealer``: the codec of a process holding data keys (``services.protection``'s ``Sealer``).
        ``clock``: the process's ``CIRCLES_CLOCK``, which dates each envelope (its ``time``, what consumers
        take as when it happened: a webhook's ``occurred_at``, a circle's formation); the real clock if none.
        ``linger_ms``: the producer's (default ``producer()``'s); 0 for a request handler that waits for
        each acknowledgement in turn (an API), where lingering only adds to every request's latency."""
        self.source = source
        self.prefix = prefix
        self.metrics = metrics
        self.timeout_s = timeout_s
        """For request handlers: ``publish`` gives up after this long with ``KafkaTimeoutError`` (the record
        may still be written later; callers answer so that the same request can be sent again)."""
        self.codec = sealer or PLAIN
        self.clock: Clock = clock or SystemClock()
        self._bootstrap = bootstrap_servers
        self._producer: Any = None
        self._overrides: dict[str, Any] = {} if linger_ms is None else {"linger_ms": linger_ms}

    async def start(self) -> None:
        client_id = self.source.strip("/").replace("/", "-")
        self._producer = RenewingProducer(
            lambda: producer(self._bootstrap, client_id=client_id, **self._overrides), client_id
        )
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def envelope(self, event: Event, correlation_id: str, **kwargs: Any) -> Envelope:
        """The event's envelope, dated by this publisher's clock unless ``time`` is given."""
        if kwargs.get("time") is None:
            kwargs["time"] = self.clock.now()
        return Envelope.for_event(event, source=self.source, correlation_id=correlation_id, **kwargs)

    async def publish(self, event: Event, envelope: Envelope, *, topic: str | None = None) -> RecordMetadata:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await (await self.send(event, envelope, topic=topic))
        except TimeoutError:
            raise KafkaTimeoutError(f"not acknowledged within {self.timeout_s}s") from None

    async def send(
        self, event: Event, envelope: Envelope, *, topic: str | None = None
    ) -> Awaitable[RecordMetadata]:
        """Queue the record; await the returned future for the broker's acknowledgement."""
        key, value, headers = await self.codec.encode(event, envelope)
        name = topic or self.prefix + topic_of(type(event)).name
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            name, value, key=key, headers=headers
        )
        self._count_when_acknowledged(future, name)
        return future

    async def send_raw(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> RecordMetadata:
        future = await self._producer.send(topic, value, key=key, headers=headers or [])
        self._count_when_acknowledged(future, topic)
        return await future

    def _count_when_acknowledged(self, future: asyncio.Future[RecordMetadata], topic: str) -> None:
        metrics = self.metrics
        if metrics is not None:
            future.add_done_callback(
                lambda done: None if done.cancelled() or done.exception() else metrics.published(topic)
            )


class CompactedView(Generic[V]):
    """The latest value for each key of a (compacted) topic, kept current by a background reader.

    Every partition is read from the beginning without a consumer group, so each process holds the
    whole view; ``sync()`` waits until it has caught up with what was written before the call.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        parse: Callable[[bytes], V],
        *,
        on_change: Callable[[str, V | None], None] | None = None,
        client_id: str = "circles-view",
        sealer: Codec | None = None,
    ) -> None:
        """``sealer``: for a topic with sealed personal fields, so that their keys are fetched before
        ``parse`` (which opens them) runs; a record of an erased subject is dropped."""
        self.topic = topic
        self._parse = parse
        self._sealer = sealer
        self._on_change = on_change
        self._data: dict[str, V] = {}
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
        }
        self._consumer: Any = None
        self._positions: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Condition()
        self.skipped = 0
        self.erased = 0

    async def start(self) -> None:
        # aiokafka wants a running loop
        self._consumer = AIOKafkaConsumer(self.topic, **self._options, **security_options())
        await self._consumer.start()
        self._task = supervise(f"view:{self.topic}", self._step)
        try:
            async with asyncio.timeout(30), self._progress:  # with no group, aiokafka assigns every partition
                await self._progress.wait_for(lambda: bool(self._consumer.assignment()))
        except TimeoutError:
            await self.stop()
            raise LookupError(f"topic {self.topic} does not exist: create the topics first") from None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> CompactedView[V]:
        await self.start()
        async with asyncio.timeout(60):
            await self.sync()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def sync(self) -> None:
        """Return once every record written before this call has been applied (wrap in a timeout)."""
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        async with self._progress:
            await self._progress.wait_for(
                lambda: all(self._positions.get(tp, -1) >= end for tp, end in ends.items())
            )

    async def _step(self) -> None:
        """Read what is new (supervised: a failure is retried from the same position)."""
        batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
        if self._sealer is not None:
            await self._sealer.prepare(r.value for records in batches.values() for r in records)
        for records in batches.values():
            for record in records:
                self._apply(record.key, record.value, record.offset)
        for tp in self._consumer.assignment():
            self._positions[tp] = await self._consumer.position(tp)
        async with self._progress:
            self._progress.notify_all()

    def _apply(self, raw_key: bytes | None, raw_value: bytes | None, offset: int) -> None:
        if raw_key is None:
            self.skipped += 1
            return
        key = raw_key.decode("utf-8", errors="replace")
        if raw_value is None:
            self._data.pop(key, None)
            if self._on_change:
                self._on_change(key, None)
            return
        try:
            value = self._parse(raw_value)
        except Erased:  # an erased subject: what was sealed is gone for good
            self.erased += 1
            if self._data.pop(key, None) is not None and self._on_change:
                self._on_change(key, None)
            return
        except Exception as error:  # a bad record must not stop the view; it is counted and logged
            self.skipped += 1
            log.warning("view_record_skipped", topic=self.topic, offset=offset, error=type(error).__name__)
            return
        self._data[key] = value
        if self._on_change:
            self._on_change(key, value)

    def get(self, key: str) -> V | None:
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[str, V]]:
        return iter(list(self._data.items()))

    def values(self) -> Iterator[V]:
        return iter(list(self._data.values()))


async def read_compacted(
    bootstrap_servers: str, topic: str, parse: Callable[[bytes], V], sealer: Codec | None = None
) -> dict[str, V]:
    """A one-off snapshot of a compacted topic (for the CLI): read to the end, then stop."""
    async with CompactedView(bootstrap_servers, topic, parse, client_id="circles-cli", sealer=sealer) as view:
        return dict(view.items())


@dataclass(frozen=True)
class Outcome:
    """What became of a command: the record it caused, or its dead letter (with ``dlq_error``)."""

    topic: str
    record: Any

    @property
    def refused(self) -> bool:
        return self.topic.endswith(".dlq")

    @property
    def error(self) -> str:
        headers = dict(self.record.headers or ())
        return bytes(headers.get("dlq_error", b"")).decode(errors="replace")


class TopicTail:
    """Follows topics from their end as it is at ``start()`` (no consumer group), handing each record to
    ``on_record`` in a supervised task."""

    def __init__(self, bootstrap_servers: str, topics: list[str], client_id: str, name: str) -> None:
        self.topics = topics
        self.name = name
        self._options = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "latest",
        }
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(*self.topics, **self._options, **security_options())
        await self._consumer.start()
        async with asyncio.timeout(30):
            while not self._consumer.assignment():
                await self._consumer.getmany(timeout_ms=50)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)  # fixes the starting point at the current end
        self._task = supervise(self.name, self._step)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _step(self) -> None:
        for tp, records in (await self._consumer.getmany(timeout_ms=200)).items():
            for record in records:
                self.on_record(tp.topic, record)

    def on_record(self, topic: str, record: Any) -> None:
        raise NotImplementedError


class OutcomeWatcher(TopicTail):
    """Watches topics from their current end for the outcome of commands sent after ``start()``: a record
    whose ``ce_causationid`` is the command's id, or a dead letter carrying the command's own ``ce_id``.

    ``types``: only records of these event types count as outcomes (a command that causes several events,
    such as an erasure that also withdraws, is done when the one that says so arrives)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str],
        client_id: str = "circles-outcomes",
        *,
        types: Collection[str] | None = None,
    ) -> None:
        super().__init__(bootstrap_servers, topics, client_id, "outcome-watcher")
        self.types = frozenset(types) if types is not None else None
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._seen: dict[str, Outcome] = {}

    async def wait(self, command_id: str, seconds: float) -> Outcome | None:
        if command_id in self._seen:
            return self._seen.pop(command_id)
        future = self._waiting.setdefault(command_id, asyncio.get_running_loop().create_future())
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(command_id, None)

    def on_record(self, topic: str, record: Any) -> None:
        headers = {name: value.decode(errors="replace") for name, value in record.headers or () if value}
        dead = topic.endswith(".dlq")
        key = headers.get("ce_id") if dead else headers.get("ce_causationid")
        wanted = dead or self.types is None or headers.get("ce_type") in self.types
        if not key or not wanted:
            return
        outcome = Outcome(topic, record)
        future = self._waiting.get(key)
        if future is not None and not future.done():
            future.set_result(outcome)
        elif len(self._seen) < 10_000:
            self._seen.setdefault(key, outcome)
