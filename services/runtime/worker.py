"""The stream worker every service runs: consume, handle in a unit of work, publish, commit.

Nothing lost, nothing twice. One loop takes a batch of records (``getmany``), hands each to its topic's
handler inside a ``UnitOfWork`` (handlers read tables through it, stage table writes and output events),
then ``commit()``: outputs are published and acknowledged first, then the tables' changelog records, then
the in-memory tables change. Only then does the batch count as processed, and offsets are committed up to
processed batches only (periodically, on a rebalance and on shutdown). A crash therefore leaves state
behind what others have seen and offsets behind state: the batch is processed again, its outputs come out
again with the same derived ids, and consumers drop what they already have.

Records that cannot be decoded, or whose handler refuses them, go to ``<topic>.dlq`` with the reason.
Infrastructure failures stop the worker without committing anything further; its supervisor restarts it.

Partitions: the consumer group uses the range assignor, so a worker holds the same partition numbers of
every topic with the same partition count; each table holds the partitions of its topics' partitions.

Why not faust (whose app factory this replaces): faust-streaming 0.15.3 lost referrals in our crash test
in three ways (see docs/architecture.md); this loop's commit rule is simple enough to state and test.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from schemas.envelope import Envelope, Event, UndecodableRecord
from schemas.topics import TopicSpec, dead_letter_topic, events_of
from services.runtime import supervision
from services.runtime.clock import Clock, SystemClock, clock_from_setting
from services.runtime.codec import PLAIN, SEALED_HEADER, Codec, Erased, RecordHeaders
from services.runtime.deadletter import (
    MAX_VALUE,
    VALUE_DROPPED,
    ProcessingError,
    dead_letter_headers,
    safe_error,
)
from services.runtime.kafka import RenewingProducer
from services.runtime.kafka import producer as make_producer
from services.runtime.kafka_security import security_options
from services.runtime.logs import get_logger, log_context
from services.runtime.metrics import ErrorKind, Metrics
from services.runtime.probes import ProbeServer
from services.runtime.settings import RuntimeSettings
from services.runtime.tables import StateTable, Written

log = get_logger(__name__)
TRANSIENT = (KafkaError, ConnectionError, asyncio.TimeoutError, OSError)
"""Infrastructure failures: the worker stops and is restarted; the batch is retried, never dead-lettered."""
_MISSING: Any = object()
BATCH_BUDGET_S = 0.25
"""How long handling one batch should block the event loop at most, for batches to keep growing."""
DLQ_SUFFIX = dead_letter_topic("")


@dataclass(frozen=True)
class _Staged:
    """A record to publish when the unit commits: an event (encoded then), or raw bytes (dead letters)."""

    topic: str
    event: Event | None = None
    envelope: Envelope | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: RecordHeaders = field(default_factory=list)
    seal_as: str | None = None  # seal the whole value with this subject's key (plain personal data)


Slot = tuple[str, str]
"""(table name, key)."""


class InFlight:
    """Table writes of units committed but not yet applied (pipelining): what the next units read."""

    def __init__(self) -> None:
        self.values: dict[Slot, tuple[UnitOfWork, Any]] = {}

    def add(self, unit: UnitOfWork) -> None:
        for slot, (_, value) in unit.staged_writes():
            self.values[slot] = (unit, value)

    def remove(self, unit: UnitOfWork) -> None:
        for slot, _ in unit.staged_writes():
            if self.values.get(slot, (None,))[0] is unit:
                del self.values[slot]


class UnitOfWork:
    """The effects of one batch: staged table writes and records to publish (see the module docstring).

    Units are pipelined: the next one is handled while this one waits for acknowledgements. Its reads see
    this one's writes (``InFlight``); its changelog records are sent only after this one's (so each
    partition's changelog keeps the order of the work), and it is applied (tables, offsets) only after
    this one is."""

    def __init__(
        self,
        producer: Any,  # what sends: the worker's RenewingProducer (tests give a stand-in)
        source: str,
        metrics: Metrics | None = None,
        codec: Codec = PLAIN,
        *,
        previous: UnitOfWork | None = None,
        in_flight: InFlight | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.producer = producer
        self.source = source
        self.metrics = metrics
        self.codec = codec
        self.previous = previous
        self.in_flight = in_flight
        self.clock: Clock = clock or SystemClock()
        """Dates what it emits (the worker's ``CIRCLES_CLOCK``: a moved clock moves the events' times)."""
        self._writes: dict[Slot, tuple[StateTable[Any], Any]] = {}
        self._through: dict[Slot, tuple[StateTable[Any], Any]] = {}
        self._undo: list[tuple[Slot, Any]] = []
        self._records: list[_Staged] = []
        self._written: list[tuple[StateTable[Any], Written[Any]]] = []
        loop = asyncio.get_running_loop()
        self.changelog_sent: asyncio.Future[None] = loop.create_future()
        self.applied: asyncio.Future[None] = loop.create_future()

    def get(self, table: StateTable[Any], key: str) -> Any:
        slot = (table.name, key)
        for staged in (self._writes, self._through):
            found = staged.get(slot, _MISSING)
            if found is not _MISSING:
                return found[1]
        if self.in_flight is not None:
            pending = self.in_flight.values.get(slot, _MISSING)
            if pending is not _MISSING:
                return pending[1]
        return table.get(key)

    def put(self, table: StateTable[Any], key: str, value: Any) -> None:
        """Stage ``table[key] = value``; ``None`` deletes the key."""
        slot = (table.name, key)
        self._undo.append((slot, self._writes.get(slot, _MISSING)))
        self._writes[slot] = (table, value)

    def staged_writes(self) -> list[tuple[Slot, tuple[StateTable[Any], Any]]]:
        return [*self._through.items(), *self._writes.items()]

    async def write_through(self, table: StateTable[Any], key: str, value: Any) -> None:
        """Write one table key now and wait for its acknowledgement, before any effect that follows (e.g. the
        intent to send a message, recorded before it is sent). Staged writes still wait for ``commit()``."""
        if self.previous is not None:
            await asyncio.shield(self.previous.changelog_sent)  # the changelog keeps the order of the work
        raw = await table.encode(key, value)
        metadata = await (
            await self.producer.send(table.topic, raw, key=key.encode(), partition=table.partition(key))
        )
        self._written.append((table, Written(key, value, raw, metadata.partition, metadata.offset)))
        slot = (table.name, key)
        self._through[slot] = (table, value)
        if slot in self._writes:
            self._writes[slot] = (table, value)

    def emit(
        self, event: Event, topic: str, *, event_id: UUID, correlation_id: str, cause: Envelope | None = None
    ) -> Envelope:
        """Stage ``event`` for ``topic``; it is encoded (personal fields sealed) when the unit commits."""
        envelope = Envelope.for_event(
            event,
            source=self.source,
            correlation_id=correlation_id,
            cause=cause,
            event_id=event_id,
            time=self.clock.now(),
        )
        self._records.append(_Staged(topic, event, envelope))
        return envelope

    def forward(self, event: Event, envelope: Envelope, topic: str) -> None:
        """Stage ``event`` for ``topic`` under its existing envelope (same id, time and correlation)."""
        self._records.append(_Staged(topic, event, envelope))

    def emit_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        *,
        seal_as: str | None = None,
    ) -> None:
        self._records.append(_Staged(topic, key=key, value=value, headers=headers, seal_as=seal_as))

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

    async def commit(self, on_applied: Callable[[], None] | None = None) -> None:
        """Outputs acknowledged, then state acknowledged, then state applied (after the previous unit's)."""
        try:
            await self._commit(on_applied)
        except BaseException as error:
            for future in (self.changelog_sent, self.applied):
                if not future.done():
                    future.set_exception(error if isinstance(error, Exception) else asyncio.CancelledError())
                    future.exception()  # retrieved: a unit that waits on it raises it, nobody else must
            raise
        finally:
            if self.in_flight is not None:
                self.in_flight.remove(self)
            self._records.clear()
            self._writes.clear()
            self._through.clear()
            self._undo.clear()
            self._written.clear()

    async def _commit(self, on_applied: Callable[[], None] | None) -> None:
        # Encoded concurrently: the data keys of a batch's new subjects are then written together.
        await self._send_all(await asyncio.gather(*(self._encode(record) for record in self._records)))
        if self.metrics is not None:
            self._count(self.metrics)
        writes = list(self._writes.items())
        values = await asyncio.gather(*(table.encode(key, value) for (_, key), (table, value) in writes))
        if self.previous is not None:
            await asyncio.shield(self.previous.changelog_sent)
        changelog = [
            await self.producer.send(table.topic, raw, key=key.encode(), partition=table.partition(key))
            for ((_, key), (table, _value)), raw in zip(writes, values, strict=True)
        ]
        self.changelog_sent.set_result(None)
        acknowledged = await asyncio.gather(*changelog) if changelog else []
        for ((_, key), (table, value)), raw, metadata in zip(writes, values, acknowledged, strict=True):
            self._written.append((table, Written(key, value, raw, metadata.partition, metadata.offset)))
        if self.previous is not None:
            await asyncio.shield(self.previous.applied)
        by_table: dict[int, tuple[StateTable[Any], list[Written[Any]]]] = {}
        for table, written in self._written:
            by_table.setdefault(id(table), (table, []))[1].append(written)
        for table, written_list in by_table.values():
            table.apply(sorted(written_list, key=lambda w: (w.partition, w.offset)))
        if on_applied is not None:
            on_applied()
        self.applied.set_result(None)

    async def _encode(self, staged: _Staged) -> tuple[str, bytes | None, bytes | None, RecordHeaders]:
        if staged.event is not None and staged.envelope is not None:
            key, value, headers = await self.codec.encode(staged.event, staged.envelope)
            return staged.topic, key, value, headers
        original = staged.value
        if original is None:
            return staged.topic, staged.key, None, staged.headers
        value, headers = original, staged.headers
        if staged.seal_as is not None:
            value = await self.codec.seal_record(original, staged.seal_as)
            headers = [*headers, (SEALED_HEADER, b"1")]
        if len(value) > MAX_VALUE:  # a dead letter (the only raw records) too large to keep its value
            log.warning("dead_letter_value_dropped", topic=staged.topic, value_bytes=len(value))
            return staged.topic, staged.key, None, [*staged.headers, (VALUE_DROPPED, b"%d" % len(original))]
        return staged.topic, staged.key, value, headers

    def _count(self, metrics: Metrics) -> None:
        """Outputs are counted once acknowledged: per topic, and dead letters per source topic."""
        for topic in (staged.topic for staged in self._records):
            metrics.published(topic)
            if topic.endswith(DLQ_SUFFIX):
                metrics.dead_lettered(topic.removesuffix(DLQ_SUFFIX))

    async def _send_all(self, records: Iterable[tuple[Any, ...]]) -> list[Any]:
        futures = []
        for topic, key, value, headers, *partition in records:
            futures.append(
                await self.producer.send(
                    topic,
                    value,
                    key=key,
                    headers=headers,
                    partition=partition[0] if partition else None,
                )
            )
        return list(await asyncio.gather(*futures)) if futures else []


@dataclass(frozen=True)
class Item:
    """A decoded record, for batch handlers."""

    envelope: Envelope
    event: Event
    record: Any


Handler = Callable[[UnitOfWork, Envelope, Event], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, list[Item]], Awaitable[None]]
Authenticator = Callable[[Envelope, Any], Awaitable[None]]
"""Checks a decoded record's origin from its raw bytes and headers (e.g. a signature); raises
``ProcessingError`` to dead-letter it before its handler sees it."""


@dataclass
class _Route:
    spec: TopicSpec
    topic: str
    dlq: str
    known: dict[str, type[Event]]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    seal_dead_letters: str | None = None
    dead_letter_subject: Callable[[Any], str | None] | None = None
    authenticate: Authenticator | None = None
    processed: int = 0
    dead_lettered: int = 0


TimerFunction = Callable[["UnitOfWork"], Awaitable[None]]


@dataclass
class _Timer:
    interval: float
    function: TimerFunction


@dataclass
class WorkerStats:
    started_at: float = field(default_factory=time.monotonic)
    batches: int = 0
    records: int = 0
    last_record_at: float | None = None


class StreamWorker:
    """One service's consumer-group member: its routes (topic → handler), tables, timers and resources."""

    def __init__(self, service: str, settings: RuntimeSettings, codec: Codec | None = None) -> None:
        """``codec``: how records and table values are encoded; a service holding personal data gives its
        sealing codec (``services.protection``'s ``Sealer``, started and stopped with the worker)."""
        self.service = service
        self.settings = settings
        self.codec: Codec = codec or PLAIN
        self.source = f"/circles/{service}"
        self.clock = clock_from_setting(settings.clock)
        self.group_id = f"{settings.topic_prefix}circles-{service}"
        self.routes: dict[str, _Route] = {}
        self.tables: list[StateTable[Any]] = []
        self.timers: list[_Timer] = []
        self.resources: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []
        self.assigned_callbacks: list[Callable[[], Awaitable[None]]] = []
        self.stats = WorkerStats()
        self.ready = asyncio.Event()
        self.phase = "starting"
        """starting → joining → (rebalancing → recovering →) ready → stopping; see ``readiness``."""
        self.metrics = Metrics(f"{service}-worker")
        self.probes = ProbeServer(settings.health_host, settings.health_port, self.metrics, self.readiness)
        self.store_dir = settings.data_dir / "state" / self.group_id / (settings.worker_id or "worker")
        self._lock = asyncio.Lock()
        self._processed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: RenewingProducer | None = None
        self._units: deque[asyncio.Task[None]] = deque()
        self._in_flight = InFlight()
        self._last_unit: UnitOfWork | None = None
        self._batch_limit = settings.batch_size
        if codec is not None:
            self.resource(codec.start, codec.stop)

    # -- declaration -------------------------------------------------------------------------------------

    def route(
        self,
        spec: TopicSpec,
        handler: Handler,
        known: Mapping[str, type[Event]] | None = None,
        *,
        seal_dead_letters: str | None = None,
        dead_letter_subject: Callable[[Any], str | None] | None = None,
        authenticate: Authenticator | None = None,
    ) -> None:
        """Records of ``spec`` go one by one to ``handler``; a refused record is dead-lettered.

        ``seal_dead_letters``: a subject kind; for a topic of plain personal data (written by others), each
        dead letter is sealed whole, under the data key of the subject ``dead_letter_subject(record)`` names
        (so that erasing that subject destroys the dead letter too), else under a key of its own
        (``<kind>:<uuid>``). On such a topic nothing arrives sealed: a record with a field that looks sealed
        is dead-lettered, not skipped as an erased subject's would be.
        ``authenticate``: for a topic written by others, checks each record's origin before ``handler``."""
        self.routes[self._topic(spec)] = self._new_route(
            spec,
            known,
            handler=handler,
            seal_dead_letters=seal_dead_letters,
            dead_letter_subject=dead_letter_subject,
            authenticate=authenticate,
        )

    def route_batch(
        self, spec: TopicSpec, handler: BatchHandler, known: Mapping[str, type[Event]] | None = None
    ) -> None:
        """The decodable records of ``spec`` in one batch go to ``handler`` together (e.g. to send messages
        concurrently); it dead-letters the items it refuses with ``dead_letter``."""
        self.routes[self._topic(spec)] = self._new_route(spec, known, batch_handler=handler)

    def _topic(self, spec: TopicSpec) -> str:
        return self.settings.topic_prefix + spec.name

    def _new_route(self, spec: TopicSpec, known: Mapping[str, type[Event]] | None, **handlers: Any) -> _Route:
        dlq = self.settings.topic_prefix + spec.dlq
        return _Route(spec, self._topic(spec), dlq, dict(known or events_of(spec)), **handlers)

    def table(
        self, name: str, model: type[Any], changelog: TopicSpec, *, subject: str | None = None
    ) -> StateTable[Any]:
        """``subject``: the kind of data subject the table's keys name, when its values hold personal data.
        The table's store is ``<data dir>/state/<group>/<worker id>/<name>``."""
        table: StateTable[Any] = StateTable(
            name,
            model,
            changelog,
            self.settings.topic_prefix,
            subject=subject,
            codec=self.codec,
            directory=self.store_dir / name,
        )
        self.tables.append(table)
        return table

    def timer(self, interval: float, function: TimerFunction) -> None:
        """Every ``interval`` seconds (once the worker is ready), ``function`` runs with a unit of work of its
        own, committed when it returns, while no batch is being processed or committed. It is supervised:
        a failure is retried with back-off (``services.runtime.supervision``)."""
        self.timers.append(_Timer(interval, function))

    def resource(self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        self.resources.append((start, stop))

    def on_assigned(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Called after each rebalance, once the tables hold (and have recovered) their new partitions:
        the place to rebuild in-memory state derived from them."""
        self.assigned_callbacks.append(callback)

    @property
    def producer(self) -> RenewingProducer:
        assert self._producer is not None, "the worker is not running"
        return self._producer

    # -- running -----------------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """Ready (for ``/ready``) only while consuming with an assignment whose tables are recovered, and
        while every background task is alive."""
        if not supervision.healthy():
            return False, "failed"
        return self.phase == "ready", self.phase

    async def run(self) -> None:
        """Until ``stop()``; raises (without committing unprocessed work) on infrastructure failures.
        ``/health``, ``/ready`` and ``/metrics`` answer from the start, so a slow recovery is visible."""
        supervision.on_give_up(self._give_up)
        await self.probes.start()
        try:
            await self._run()
            if self._failure is not None:
                raise self._failure
        except TRANSIENT:
            self.metrics.error(ErrorKind.INFRASTRUCTURE)
            raise
        finally:
            self.phase = "stopped"
            await self.probes.stop()

    def _give_up(self, task: str) -> None:
        """A background task could not recover: the worker stops with an error (and is restarted)."""
        self._failure = RuntimeError(f"background task {task} could not recover")
        self.stop()

    async def _run(self) -> None:
        bootstrap = self.settings.bootstrap_servers()
        client_id = f"{self.group_id}-producer"
        # renewed after an error fatal to it (a broker outage longer than its request timeout): a timer
        # retried after the outage gets a working producer; a batch's unit that met the error has failed
        self._producer = RenewingProducer(lambda: make_producer(bootstrap, client_id=client_id), client_id)
        await self._producer.start()
        started: list[Callable[[], Awaitable[None]]] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            for start, stop in self.resources:
                await start()
                started.append(stop)
            session_ms = int(self.settings.session_timeout_s * 1000)
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=self.group_id,
                client_id=f"{self.group_id}-{self.settings.worker_id or 'worker'}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                partition_assignment_strategy=(RangePartitionAssignor,),
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(500, session_ms // 3),
                rebalance_timeout_ms=max(30_000, session_ms * 3),
                max_poll_interval_ms=300_000,
                **security_options(),
            )
            await self._consumer.start()
            if self.phase == "starting":
                self.phase = "joining"
            await self._topics_known(self._consumer)
            self._consumer.subscribe(list(self.routes), listener=_Rebalance(self))
            tasks = [asyncio.create_task(self._start_timer(timer)) for timer in self.timers]
            tasks.append(
                supervision.supervise(
                    f"{self.service}:commit", self._commit_and_measure, every=self.settings.commit_interval_s
                )
            )
            await self._consume()
        finally:
            self.phase = "stopping"  # /ready says no from here, whatever brought the worker down
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await _bounded(self._drain(), "pipeline")
            if self._consumer is not None:
                await _bounded(self._commit_processed(), "commit")
                await _bounded(self._consumer.stop(), "consumer")
            for stop in reversed(started):
                await _bounded(stop(), "resource")
            await _bounded(self._producer.stop(), "producer")
            for table in self.tables:
                table.close()

    def stop(self) -> None:
        self.phase = "stopping"
        self._stopping.set()

    async def _topics_known(self, consumer: AIOKafkaConsumer) -> None:
        """Return once the broker's metadata has every topic this worker reads. A group joined before that
        gets no partition of a topic created a moment earlier (``make run`` and the tests start processes
        right after creating the topics) and would notice it only at its next metadata refresh, minutes
        later."""
        waiting = set(self.routes) - await consumer.topics()
        if waiting:
            log.info("waiting_for_topics", topics=sorted(waiting))
        while waiting:
            await asyncio.sleep(0.2)
            waiting -= await consumer.topics()

    async def _consume(self) -> None:
        assert self._consumer is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                fetch = asyncio.ensure_future(
                    self._consumer.getmany(timeout_ms=1000, max_records=self._batch_limit)
                )
                done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if fetch not in done:
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    break
                batch = fetch.result()
                handled_s = await self._process(batch) if batch else 0.0
                self._adapt(sum(len(records) for records in batch.values()), handled_s)
                self._reap()
        finally:
            stopping.cancel()

    def _adapt(self, fetched: int, handled_s: float) -> None:
        """Batches grow under load (a full fetch handled within ``BATCH_BUDGET_S`` doubles the next, up to
        ``max_batch_size``): bigger units share their round trips to the broker. They shrink back towards
        ``batch_size`` when the backlog is gone, or when handling one took so long that the event loop (and
        the consumer's heartbeats) waited too long: a worker whose heartbeats lapse leaves the group and
        processes for a while what another worker now owns."""
        if handled_s > 2 * BATCH_BUDGET_S:
            self._batch_limit = max(self.settings.batch_size, self._batch_limit // 2)
        elif fetched >= self._batch_limit and handled_s < BATCH_BUDGET_S:
            self._batch_limit = min(self._batch_limit * 2, self.settings.max_batch_size)
        elif fetched < self._batch_limit // 4:
            self._batch_limit = max(self.settings.batch_size, self._batch_limit // 2)

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> float:
        """Handle a batch in a unit of work and start its commit; return once the pipeline has room, with
        the seconds its handlers took."""
        assert self._consumer is not None
        async with self._lock:
            held = self._consumer.assignment()
            batch = {tp: records for tp, records in batch.items() if tp in held and records}
            if not batch:
                return 0.0
            started = time.perf_counter()
            uow = self._unit()
            by_batch_route: dict[str, list[Any]] = {}
            for tp, records in batch.items():
                route = self.routes[tp.topic]
                if route.batch_handler is not None:
                    by_batch_route.setdefault(tp.topic, []).extend(records)
                    continue
                for record in records:
                    await self._handle(uow, route, record)
            for topic, records in by_batch_route.items():  # every partition's records in one call
                await self._handle_batch(uow, self.routes[topic], records)
            self._submit(uow, lambda: self._processed_batch(batch, started))
            handled_s = time.perf_counter() - started
        while len(self._units) >= self.settings.pipeline_depth:
            await asyncio.wait({self._units[0]})
            self._reap()
        return handled_s

    def _unit(self) -> UnitOfWork:
        return UnitOfWork(
            self.producer,
            self.source,
            self.metrics,
            self.codec,
            previous=self._last_unit,
            in_flight=self._in_flight,
            clock=self.clock,
        )

    def _submit(self, uow: UnitOfWork, on_applied: Callable[[], None]) -> None:
        """Start committing a handled unit; the next one may be handled meanwhile (pipelining)."""
        self._in_flight.add(uow)
        self._last_unit = uow
        self._units.append(asyncio.create_task(uow.commit(on_applied)))

    def _reap(self) -> None:
        """Forget committed units; a failed one stops the worker (its error raised from ``_consume``)."""
        while self._units and self._units[0].done():
            task = self._units.popleft()
            error = task.exception()
            if error is not None:
                raise error
        if not self._units:
            self._last_unit = None

    async def _drain(self) -> None:
        """Wait until every unit started is committed (raises a unit's failure)."""
        while self._units:
            await asyncio.wait({self._units[0]})
            self._reap()
        self._last_unit = None

    def _processed_batch(self, batch: dict[TopicPartition, list[Any]], started: float) -> None:
        """A batch's unit is applied: its records are processed, their offsets may be committed."""
        assert self._consumer is not None
        held = self._consumer.assignment()  # a rebalance or a stop may have taken some already
        for tp, records in batch.items():
            self._processed[tp] = records[-1].offset + 1
            self.stats.records += len(records)
            self.metrics.consumed(tp.topic, len(records))
            highwater = self._consumer.highwater(tp) if tp in held else None
            if highwater is not None:
                self.metrics.set_lag(tp.topic, tp.partition, highwater - self._processed[tp])
        self.metrics.batch_done(time.perf_counter() - started)
        self.stats.batches += 1
        self.stats.last_record_at = time.monotonic()

    async def _handle(self, uow: UnitOfWork, route: _Route, record: Any) -> None:
        started = time.perf_counter()
        try:
            await self._handle_one(uow, route, record)
        finally:
            self.metrics.handled(route.topic, time.perf_counter() - started)

    async def _decode(self, uow: UnitOfWork, route: _Route, record: Any) -> tuple[Envelope, Event] | None:
        """The record's event, or None once it is dead-lettered (undecodable) or skipped (erased subject)."""
        try:
            return await self.codec.decode(record.value, record.headers or (), route.known)
        except UndecodableRecord as bad:
            self._dead_letter(uow, route, record, bad.reason, ErrorKind.UNDECODABLE)
        except Erased:
            if route.seal_dead_letters is not None:  # plain data from outside: no sealed field is genuine
                reason = "a field looks sealed (sealed:v1:...): records on this topic carry plain values only"
                self._dead_letter(uow, route, record, reason, ErrorKind.UNDECODABLE)
                return None
            log.info(
                "erased_record_skipped", topic=record.topic, partition=record.partition, offset=record.offset
            )
        return None

    async def _handle_one(self, uow: UnitOfWork, route: _Route, record: Any) -> None:
        assert route.handler is not None
        decoded = await self._decode(uow, route, record)
        if decoded is None:
            return
        envelope, event = decoded
        with log_context(
            correlation_id=envelope.correlationid, event_id=str(envelope.id), event_type=envelope.type
        ):
            savepoint = uow.savepoint()
            try:
                if route.authenticate is not None:
                    await route.authenticate(envelope, record)
                await route.handler(uow, envelope, event)
            except TRANSIENT:
                raise
            except Exception as error:
                uow.rollback_to(savepoint)
                kind = ErrorKind.REFUSED if isinstance(error, ProcessingError) else ErrorKind.UNEXPECTED
                self._dead_letter(uow, route, record, safe_error(error), kind)
                return
        route.processed += 1

    async def _handle_batch(self, uow: UnitOfWork, route: _Route, records: list[Any]) -> None:
        assert route.batch_handler is not None
        items = []
        for record in records:
            decoded = await self._decode(uow, route, record)
            if decoded is not None:
                items.append(Item(*decoded, record))
        if items:
            started = time.perf_counter()
            await route.batch_handler(uow, items)
            self.metrics.handled(route.topic, time.perf_counter() - started)
            route.processed += len(items)

    def dead_letter(self, uow: UnitOfWork, item: Item, error: str) -> None:
        """For batch handlers: send one item to its topic's dead-letter topic with ``error``."""
        self._dead_letter(uow, self.routes[item.record.topic], item.record, error, ErrorKind.REFUSED)

    def _dead_letter(self, uow: UnitOfWork, route: _Route, record: Any, error: str, kind: str) -> None:
        headers = dead_letter_headers(
            list(record.headers or ()),
            error=error,
            service=self.service,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        sealed_as = None
        if route.seal_dead_letters:
            named = route.dead_letter_subject(record) if route.dead_letter_subject else None
            sealed_as = named or f"{route.seal_dead_letters}:{uuid4()}"
        uow.emit_raw(route.dlq, record.key, record.value, headers, seal_as=sealed_as)
        route.dead_lettered += 1
        self.metrics.error(kind)
        log.warning(
            "dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, error=error
        )

    async def _commit_processed(self) -> None:
        """Commit offsets up to processed batches (never further)."""
        assert self._consumer is not None
        held = self._consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self._processed.items()
            if tp in held and self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The group moved on; the partitions' new owner will process these records again (idempotent).
            log.warning("commit_failed", error=type(error).__name__)
            self.metrics.error(ErrorKind.COMMIT_FAILED)
            return
        self._committed.update(offsets)

    async def _commit_and_measure(self) -> None:
        """The periodic step: offsets of processed batches committed, then the lag measured."""
        await self._commit_processed()
        await self._refresh_lag()

    async def _refresh_lag(self) -> None:
        """Lag of every held partition, idle ones included: high-water mark minus processed position."""
        assert self._consumer is not None
        if self.phase != "ready":
            return  # mid-rebalance: the assignment is about to change
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            position = self._processed.get(tp)
            if highwater is None:
                continue  # nothing fetched from it yet
            if position is None:  # nothing processed yet: where the group will start
                try:
                    async with asyncio.timeout(1):
                        position = await self._consumer.position(tp)
                except (IllegalStateError, KafkaError, TimeoutError):
                    continue
            if self.phase == "ready" and tp in self._consumer.assignment():
                self.metrics.set_lag(tp.topic, tp.partition, highwater - position)

    async def _start_timer(self, timer: _Timer) -> None:
        await self.ready.wait()
        name = getattr(timer.function, "__name__", "timer")
        await supervision.supervise(
            f"{self.service}:{name}", lambda: self._run_timer(timer), every=timer.interval
        )

    async def _run_timer(self, timer: _Timer) -> None:
        """One run of a timer, on a drained pipeline (it reads tables directly), committed before the next
        batch is handled."""
        async with self._lock:
            await self._drain()
            uow = self._unit()
            await timer.function(uow)
            await uow.commit()

    # -- rebalancing -------------------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.phase != "stopping":
            self.phase = "rebalancing"
        async with self._lock:  # the batches in hand finish, and their offsets are committed, first
            try:
                await self._drain()
            except TRANSIENT as error:  # a unit failed: the worker stops (after committing what was applied)
                self._failure = error
                self.stop()
            with contextlib.suppress(KafkaError):
                await self._commit_processed()
            for tp in revoked:
                self._processed.pop(tp, None)
                self._committed.pop(tp, None)
                self.metrics.forget_lag(tp.topic, tp.partition)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            if self.phase != "stopping":
                self.phase = "recovering"
            started = time.monotonic()
            recovered = 0
            for table in self.tables:
                recovered += await table.recover(
                    self.settings.bootstrap_servers(), set(self._table_partitions(table))
                )
            for callback in self.assigned_callbacks:
                await callback()
            log.info(
                "partitions_assigned",
                partitions=sorted(
                    f"{tp.topic.removeprefix(self.settings.topic_prefix)}:{tp.partition}" for tp in assigned
                ),
                recovered_records=recovered,
                recovery_seconds=round(time.monotonic() - started, 3),
            )
            if self.phase != "stopping":
                self.phase = "ready"
            if not self.ready.is_set():
                self.ready.set()
                log.info("worker_ready", group=self.group_id, probe_port=self.probes.port)

    def _table_partitions(self, table: StateTable[Any]) -> frozenset[int]:
        """A table holds the partitions this worker holds of the topics with the table's partition count."""
        assert self._consumer is not None
        return frozenset(
            tp.partition
            for tp in self._consumer.assignment()
            if self.routes[tp.topic].spec.partitions == table.partitions
        )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker._on_assigned(set(assigned))


SHUTDOWN_STEP_S = 10.0
"""How long each step of a worker's shutdown may take. After a broker outage longer than the producer's
request timeout, aiokafka's producer could wait without end to flush a batch it retries forever (and its
consumer to leave the group): the worker, already failed, neither consumed nor exited, and answered /ready.
Not waiting loses nothing: offsets are committed only after a batch's outputs are acknowledged."""


async def _bounded(step: Awaitable[object], what: str) -> None:
    """One shutdown step, given up after ``SHUTDOWN_STEP_S`` (or on an error: the worker is going anyway)."""
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_S):
            await step
    except TimeoutError:
        log.warning("shutdown_step_timed_out", step=what, seconds=SHUTDOWN_STEP_S)
    except Exception as error:
        log.warning("shutdown_step_failed", step=what, error=type(error).__name__)


def run_worker(worker: StreamWorker) -> None:
    """Run a worker in the foreground until SIGTERM or SIGINT; a failure exits non-zero."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()

    asyncio.run(main())
