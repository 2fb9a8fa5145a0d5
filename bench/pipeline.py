"""One round of the pipeline benchmarks: a fresh topic prefix, every service running, the demo agencies, a
volunteer pool, the SMTP sink, and an observer of what comes out.

What "done" means for a referral (submitted → proposal → notification): the matching service has published
its outcome for it (``match proposed``, or ``match deferred`` if no circle can be formed) and the
coordinator's email about that outcome (template ``match_proposed`` / ``match_deferred``) has been taken by
the SMTP sink. The pool is sized so that every referral of a round can get a proposal; the counts of each
outcome are reported. The agency's own emails (received, decided) are sent too and counted, but a referral
does not wait for them.

Hops on that path (a service consuming a topic and producing to the next): inbound → referrals worker →
commands → referrals worker → referral events → matching forwarder → matching inbox → matcher → matching
events → notifications routing → notification requests → delivery → SMTP: six.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.sink import Delivery, SinkProcess
from bench.stack import COORDINATOR_EMAIL, Stack
from bench.workload import Record, Submission, inbound_topic, seed_volunteers, submissions
from schemas.topics import MATCHING_EVENTS, MATCHING_POOL, TopicSpec
from services.notifications.domain.routing import RoutingConfig, coordinator_recipients, notification_id
from services.protection.sealer import Sealer
from services.runtime.kafka import producer as make_producer

HOPS = 6
OUTCOMES = {"circles.match.proposed.v1": "proposed", "circles.match.deferred.v1": "deferred"}
COORDINATOR = coordinator_recipients(RoutingConfig(COORDINATOR_EMAIL, "", ""))[0]
VOLUNTEERS_PER_REFERRAL = 4 / 0.8
"""A proposal holds 4 volunteers; about 83% of the synthetic pool is matchable."""


@dataclass
class Outcome:
    kind: str
    observed_at: float
    """When the observer's consumer had the record (``time.time()``)."""
    event_time: float
    """The envelope's ``ce_time``: when the matching service made the event."""


async def from_the_end(bootstrap: str, prefix: str, spec: TopicSpec) -> Any:
    """A started consumer of every partition of the topic, positioned at its current end."""
    topic = prefix + spec.name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(spec.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer


async def stop_following(task: asyncio.Task[None] | None, consumer: Any) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if consumer is not None:
        await consumer.stop()


@dataclass
class Follower:
    """Follows one topic from its end at ``start()`` (polling up to 5,000 records at a time): each record to
    ``on_record`` with when the consumer had it (``time.time()``), then ``after_batch``."""

    bootstrap: str
    prefix: str
    topic: ClassVar[TopicSpec]
    _consumer: Any = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        self._consumer = await from_the_end(self.bootstrap, self.prefix, self.topic)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await stop_following(self._task, self._consumer)

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=20, max_records=5000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    self.on_record(record, now)
            self.after_batch()

    def on_record(self, record: Any, now: float) -> None:
        raise NotImplementedError

    def after_batch(self) -> None:
        """After each poll, whether or not it brought records."""


@dataclass
class Observer(Follower):
    """Follows the matching events topic (from its end at start) and the sink's deliveries."""

    topic: ClassVar[TopicSpec] = MATCHING_EVENTS
    sink: SinkProcess = field(kw_only=True)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    notified: dict[str, float] = field(default_factory=dict)
    templates: Counter[str] = field(default_factory=Counter)
    _referral_of: dict[str, str] = field(default_factory=dict)
    _unmatched: dict[str, float] = field(default_factory=dict)

    def on_record(self, record: Any, now: float) -> None:
        self._outcome(record, now)

    def after_batch(self) -> None:
        for delivery in self.sink.poll():
            self._delivered(delivery)

    def _outcome(self, record: Any, now: float) -> None:
        headers = {name: value.decode() for name, value in record.headers or () if value is not None}
        kind = OUTCOMES.get(headers.get("ce_type", ""))
        if kind is None or record.key is None:
            return
        referral_id = record.key.decode()
        if referral_id in self.outcomes:
            return  # a redelivery: the first one counts
        event_time = datetime.fromisoformat(headers["ce_time"]).timestamp()
        self.outcomes[referral_id] = Outcome(kind, now, event_time)
        notification = str(notification_id(uuid.UUID(headers["ce_id"]), COORDINATOR))
        self._referral_of[notification] = referral_id
        early = self._unmatched.pop(notification, None)
        if early is not None:
            self.notified.setdefault(referral_id, early)

    def _delivered(self, delivery: Delivery) -> None:
        self.templates[delivery.template] += 1
        if delivery.template not in ("match_proposed", "match_deferred"):
            return
        referral_id = self._referral_of.get(delivery.notification_id)
        if referral_id is None:  # the email came before the observer read the event
            self._unmatched[delivery.notification_id] = delivery.at
        else:
            self.notified.setdefault(referral_id, delivery.at)

    async def wait_for(self, referral_ids: list[str], seconds: float, stall_s: float = 60.0) -> bool:
        """Until every referral is notified; gives up after ``seconds``, or ``stall_s`` without progress."""
        deadline = time.monotonic() + seconds
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            done = sum(1 for referral in referral_ids if referral in self.notified)
            if done == len(referral_ids):
                return True
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                return False
            await asyncio.sleep(0.1)
        return False

    async def wait_for_messages(self, count: int, seconds: float) -> bool:
        """Until the sink has taken ``count`` messages in all (every template)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sum(self.templates.values()) >= count:
                return True
            await asyncio.sleep(0.2)
        return False


@dataclass
class Round:
    """Everything one round needs; ``referrals(n)`` hands out fresh submissions."""

    name: str
    stack: Stack
    sink: SinkProcess
    observer: Observer
    producer: AIOKafkaProducer
    sealer: Sealer
    today: date
    volunteers: int
    matchable: int
    startup_s: float
    offered: int = 0

    def referrals(self, count: int) -> list[Submission]:
        made = submissions(self.name, count, self.today, start=self.offered)
        self.offered += count
        return made

    async def record(self, submission: Submission) -> Record:
        """The submission's record as an agency system produces it (see ``bench.workload``)."""
        return await submission.record(self.sealer, signing_keys=self.stack.signing_keys)

    async def send(self, record: Record) -> asyncio.Future[Any]:
        key, value, headers = record
        future: asyncio.Future[Any] = await self.producer.send(
            inbound_topic(self.stack.prefix), value, key=key, headers=headers
        )
        return future

    def messages_expected(self) -> int:
        """Three emails per referral: received and decided to the agency, the outcome to the coordinator."""
        return 3 * self.offered


@contextlib.asynccontextmanager
async def pipeline_round(bootstrap: str, name: str, work: Path, referrals: int, today: date) -> Any:
    """Start a round for about ``referrals`` referrals (the pool is sized for them); stop it after."""
    started = time.monotonic()
    prefix = f"bench-{name}."
    sink = SinkProcess(work / f"{name}-sink.tsv").start()
    stack = Stack(bootstrap, prefix, work / name, work / "logs", sink.port)
    producer = make_producer(bootstrap, client_id=f"bench-{name}", linger_ms=1)
    observer = Observer(bootstrap, prefix, sink=sink)
    sealer = stack.sealer(["referral", "volunteer"])
    try:
        await stack.prepare()
        await producer.start()
        await sealer.start()
        volunteers = int(referrals * VOLUNTEERS_PER_REFERRAL) + 500
        matchable = await seed_volunteers(producer, sealer, prefix, volunteers, today)
        stack.start()
        await asyncio.to_thread(stack.wait_until_ready)
        await _pool_applied(bootstrap, prefix, volunteers)
        await observer.start()
        round_ = Round(
            name,
            stack,
            sink,
            observer,
            producer,
            sealer,
            today,
            volunteers,
            matchable,
            time.monotonic() - started,
        )
        yield round_
    finally:
        await observer.stop()
        await sealer.stop()
        await producer.stop()
        await asyncio.to_thread(stack.stop)
        sink.stop()


async def warm_up(round_: Round, count: int = 50) -> None:
    """A few referrals through the whole pipeline first (connections, caches, templates)."""
    batch = round_.referrals(count)
    for submission in batch:
        await round_.send(await round_.record(submission))
    if not await round_.observer.wait_for([s.referral_id for s in batch], 120):
        raise RuntimeError(f"warm-up: only {len(round_.observer.notified)} of {count} referrals notified")


async def drain(round_: Round, seconds: float = 120) -> bool:
    """Until every email of every referral offered so far has been taken by the sink."""
    return await round_.observer.wait_for_messages(round_.messages_expected(), seconds)


async def _pool_applied(bootstrap: str, prefix: str, volunteers: int, seconds: float = 300) -> None:
    """The matcher has applied every seeded volunteer (its pool changelog holds one record each)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(prefix + MATCHING_POOL.name, p) for p in range(MATCHING_POOL.partitions)]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sum((await consumer.end_offsets(partitions)).values()) >= volunteers:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the matcher did not apply {volunteers} volunteers within {seconds}s")
    finally:
        await consumer.stop()
