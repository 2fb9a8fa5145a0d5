"""The faust app factory with safe defaults, pydantic-valued tables, the unit of work and event agents.

Safe defaults: ``acks=all``, ``at_least_once``, agents with ``concurrency=1`` (faust-streaming #606), topics
only from the catalogue (never auto-declared), new consumer groups read from the earliest offset, and an
agent crash takes the worker down so that its supervisor restarts it instead of leaving it half-alive.

Nothing lost, nothing twice: an agent handles a batch of events inside a ``UnitOfWork``. Handlers read
and stage table writes and output events there; ``commit()`` publishes the outputs and waits for every
acknowledgement *before* it writes the tables, and faust flushes the producer (table changelogs
included) before it commits offsets. A crash therefore leaves state behind what others have seen, never
ahead: the batch is processed again, its outputs are computed again with the same derived ids, and
consumers drop what they already have.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

import faust
import mode
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust.serializers import codecs
from faust.types import EventT
from pydantic import BaseModel

from schemas.envelope import Envelope, Event, UndecodableRecord, decode, encode
from schemas.topics import TopicSpec, events_of
from services.runtime.deadletter import dead_letter_headers, safe_error
from services.runtime.logs import get_logger, log_context
from services.runtime.settings import RuntimeSettings

log = get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
TRANSIENT = (KafkaError, ConnectionError, asyncio.TimeoutError, OSError)
"""Infrastructure failures: the worker crashes and is restarted; the batch is retried, not dead-lettered."""


class ModelCodec(codecs.Codec):
    """Stores a pydantic model as its JSON, so changelogs hold the same JSON our contracts define."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        super().__init__()

    def _dumps(self, obj: Any) -> bytes:
        return obj.model_dump_json().encode() if isinstance(obj, BaseModel) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return self.model.model_validate_json(s)


class StrCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return str(obj).encode()

    def _loads(self, s: bytes) -> Any:
        return s.decode()


codecs.register("circles-str", StrCodec())


def create_app(service: str, settings: RuntimeSettings, *, web_port: int | None = None) -> faust.App:
    heartbeat = max(1.0, settings.session_timeout_s / 3)
    datadir = settings.data_dir / "workers" / f"{service}-{settings.worker_id or 'main'}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"{settings.topic_prefix}circles-{service}",
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers().split(",")],
        store="memory://",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=0.002,
        key_serializer="raw",
        value_serializer="raw",
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_commit_every=10_000,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=heartbeat,
        broker_rebalance_timeout=max(30.0, settings.session_timeout_s * 3),
        table_standby_replicas=settings.standby_replicas,
        agent_supervisor=mode.CrashingSupervisor,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        datadir=str(datadir),
        worker_redirect_stdouts=False,
    )


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``: murmur2, as every producer here uses."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class KeyedTable(faust.Table):  # type: ignore[type-arg]
    """A table whose changelog record for a key goes to that key's own partition (``partition_of``).

    faust would use the partition of the event being processed, which is wrong for a batch spanning
    partitions and impossible from a timer; its ``use_partitioner`` option needs the producer to have
    metadata for the changelog topic before the first write, which a fresh worker does not.
    """

    def partition_for_key(self, key: Any) -> int | None:
        assert self.partitions is not None
        return partition_of(str(key), self.partitions)


def model_table(app: faust.App, name: str, model: type[M], changelog: TopicSpec, prefix: str = "") -> Any:
    """A faust table whose values are ``model`` instances, over the catalogue's changelog topic."""
    codec = f"pydantic:{model.__module__}.{model.__qualname__}"
    codecs.register(codec, ModelCodec(model))
    topic = app.topic(
        prefix + changelog.name,
        partitions=changelog.partitions,
        key_serializer="circles-str",
        value_serializer=codec,
        compacting=True,
        deleting=False,
    )
    table = KeyedTable(
        app,
        name=name,
        beacon=app.beacon,
        default=None,
        partitions=changelog.partitions,
        changelog_topic=topic,
    )
    # faust derives a table's serializers from key_type/value_type (json by default); ours are codecs.
    table.key_serializer = "circles-str"
    table.value_serializer = codec
    return app.tables.add(table)


_MISSING: Any = object()


class UnitOfWork:
    """The effects of one batch: staged table writes and records to publish. See the module docstring."""

    def __init__(self, app: faust.App, source: str) -> None:
        self.app = app
        self.source = source
        self._writes: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._undo: list[tuple[tuple[str, str], Any]] = []
        self._records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def get(self, table: Any, key: str) -> Any:
        staged = self._writes.get((table.name, key), _MISSING)
        if staged is not _MISSING:
            return staged[1]
        return table.get(key)

    def put(self, table: Any, key: str, value: Any) -> None:
        """Stage ``table[key] = value``; ``None`` deletes the key."""
        slot = (table.name, key)
        self._undo.append((slot, self._writes.get(slot, _MISSING)))
        self._writes[slot] = (table, value)

    def emit(
        self,
        event: Event,
        topic: str,
        *,
        event_id: UUID,
        correlation_id: str,
        cause: Envelope | None = None,
    ) -> Envelope:
        envelope = Envelope.for_event(
            event, source=self.source, correlation_id=correlation_id, cause=cause, event_id=event_id
        )
        key, value, headers = encode(event, envelope)
        self._records.append((topic, key, value, headers))
        return envelope

    def emit_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self._records.append((topic, key, value, headers))

    def savepoint(self) -> tuple[int, int]:
        return len(self._records), len(self._undo)

    def rollback_to(self, savepoint: tuple[int, int]) -> None:
        records, undo = savepoint
        del self._records[records:]
        while len(self._undo) > undo:
            slot, previous = self._undo.pop()
            if previous is _MISSING:
                self._writes.pop(slot, None)
            else:
                self._writes[slot] = previous

    @property
    def pending_records(self) -> int:
        return len(self._records)

    async def commit(self) -> None:
        producer = self.app.producer
        futures = [
            await producer.send(topic, key, value, None, None, headers)
            for topic, key, value, headers in self._records
        ]
        if futures:
            await asyncio.gather(*futures)
        for (_, key), (table, value) in self._writes.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        self._records.clear()
        self._writes.clear()
        self._undo.clear()


Handler = Callable[[UnitOfWork, Envelope, Event], Awaitable[None]]
_APP_LOCKS: weakref.WeakKeyDictionary[faust.App, asyncio.Lock] = weakref.WeakKeyDictionary()


class EventAgent:
    """Consumes one topic in batches: decodes each record, hands it to ``handler`` inside the batch's
    unit of work, and dead-letters what cannot be decoded or processed, with the reason.

    The agents of one app take turns (one lock per app): two batches touching the same table key never
    interleave across the await in ``commit()``.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        spec: TopicSpec,
        handler: Handler,
        service: str,
        settings: RuntimeSettings,
        known: Mapping[str, type[Event]] | None = None,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.spec = spec
        self.handler = handler
        self.service = service
        self.settings = settings
        self.known = dict(known or events_of(spec))
        self.topic_name = settings.topic_prefix + spec.name
        self.dlq_name = settings.topic_prefix + spec.dlq
        self.source = f"/circles/{service}"
        topic = app.topic(
            self.topic_name, partitions=spec.partitions, key_serializer="raw", value_serializer="raw"
        )
        self.agent = app.agent(topic, name=name or f"{service}.{spec.name}", concurrency=1)(self._consume)
        self.lock = _APP_LOCKS.setdefault(app, asyncio.Lock())
        self.processed = 0
        self.dead_lettered = 0

    async def _consume(self, stream: Any) -> None:
        async for batch in stream.take_events(self.settings.batch_size, within=self.settings.batch_within_s):
            async with self.lock:
                uow = UnitOfWork(self.app, self.source)
                for event in batch:
                    await self._handle(uow, event)
                await uow.commit()

    async def _handle(self, uow: UnitOfWork, event: EventT[Any]) -> None:
        message = event.message
        try:
            envelope, data = decode(message.value, _headers(message.headers), self.known)
        except UndecodableRecord as bad:
            self._dead_letter(uow, event, bad.reason)
            return
        with log_context(
            correlation_id=envelope.correlationid, event_id=str(envelope.id), event_type=envelope.type
        ):
            savepoint = uow.savepoint()
            try:
                await self.handler(uow, envelope, data)
            except TRANSIENT:
                raise
            except Exception as error:
                uow.rollback_to(savepoint)
                self._dead_letter(uow, event, safe_error(error))
                return
        self.processed += 1

    def _dead_letter(self, uow: UnitOfWork, event: EventT[Any], error: str) -> None:
        message = event.message
        headers = dead_letter_headers(
            _headers(message.headers),
            error=error,
            service=self.service,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        uow.emit_raw(self.dlq_name, message.key, message.value, headers)
        self.dead_lettered += 1
        log.warning(
            "dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
        )


def _headers(headers: Any) -> list[tuple[str, bytes | None]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return [(str(name), value) for name, value in headers]


class Resource(mode.Service):
    """Starts and stops something of ours (a view, a client) with the faust app."""

    def __init__(self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self._start, self._stop = start, stop

    async def on_start(self) -> None:
        await self._start()

    async def on_stop(self) -> None:
        await self._stop()


class _Worker(faust.Worker):
    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        log.info("worker_ready", app=self.app.conf.id)


def run_worker(app: faust.App, *, loglevel: str = "info") -> None:
    """Run a faust worker in the foreground, keeping our JSON logging (no faust banner or colours).

    Logs ``worker_ready`` once its tables are recovered and it consumes."""
    worker = _Worker(
        app,
        loglevel=loglevel,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
