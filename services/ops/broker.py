"""A read-only look at the broker: offsets, groups and records, without joining any consumer group.

Operations must never disturb the pipeline they watch: joining a worker's group would trigger a rebalance,
so groups are only described and their committed offsets fetched through the admin API, and records are
read by a consumer with no group at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from services.runtime.kafka_security import security_options


@dataclass(frozen=True)
class GroupInfo:
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead (never existed or expired)
    members: int


class Broker:
    """``async with Broker(bootstrap) as broker:`` one admin client and one group-less consumer."""

    def __init__(self, bootstrap_servers: str, client_id: str = "circles-ops") -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._admin: Any = None
        self._consumer: Any = None

    async def __aenter__(self) -> Broker:
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, **security_options()
        )
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **security_options(),
        )
        try:
            await self._consumer.start()
        except Exception:
            await self._admin.close()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topics: Iterable[str]) -> dict[str, list[TopicPartition]]:
        """Each topic's partitions; LookupError names the first topic that does not exist."""
        names = list(topics)
        described = {entry["topic"]: entry for entry in await self._admin.describe_topics(names)}
        result = {}
        for name in names:
            entry = described.get(name)
            if entry is None or entry["error_code"] or not entry["partitions"]:
                raise LookupError(f"topic {name} does not exist: create the topics first (make run)")
            numbers = sorted(partition["partition"] for partition in entry["partitions"])
            result[name] = [TopicPartition(name, number) for number in numbers]
        return result

    async def offsets(
        self, tps: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """(beginning offsets, end offsets) of ``tps``."""
        if not tps:
            return {}, {}
        # Assigning makes the client fetch metadata for all topics at once (otherwise it learns them one by
        # one, with a back-off each: seconds); paused, so that no records are fetched.
        self._consumer.assign(tps)
        self._consumer.pause(*tps)
        beginnings = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        return dict(beginnings), dict(ends)

    async def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The group's committed offsets (partitions it never committed are absent)."""
        coordinator = await self._coordinator(group_id)
        offsets = await self._admin.list_consumer_group_offsets(group_id, group_coordinator_id=coordinator)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def group(self, group_id: str) -> GroupInfo:
        coordinator = await self._coordinator(group_id)
        responses = await self._admin.describe_consumer_groups([group_id], group_coordinator_id=coordinator)
        for response in responses:
            for described in response.groups:
                error_code, name, state, _protocol_type, _protocol, members, *_ = described
                if name == group_id and not error_code:
                    return GroupInfo(state=state, members=len(members))
        return GroupInfo(state="Dead", members=0)

    async def _coordinator(self, group_id: str, seconds: float = 15.0) -> int:
        """The group's coordinator broker. On a new cluster the offsets topic is created on first use and
        the coordinator is briefly unavailable: retried."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                node: int = await self._admin.find_coordinator(group_id)
                return node
            except KafkaError as error:
                if not error.retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def newest_timestamps(
        self, ends: dict[TopicPartition, int], beginnings: dict[TopicPartition, int], seconds: float = 10.0
    ) -> dict[TopicPartition, int]:
        """The timestamp (ms) of the last record of each non-empty partition.

        Partitions of topics this principal may describe but not read (on a broker with ACLs, e.g. the
        coordinator page, which must not read other services' private topics) are left out: unknown."""
        ranges = {tp: (end - 1, end) for tp, end in ends.items() if end > beginnings.get(tp, 0)}
        newest: dict[TopicPartition, int] = {}
        while ranges:
            try:
                async for record in self.read(ranges, seconds=seconds):
                    tp = TopicPartition(record.topic, record.partition)
                    newest[tp] = max(newest.get(tp, 0), record.timestamp)
                return newest
            except TopicAuthorizationFailedError as refused:
                unreadable = {str(topic) for topic in refused.args} & {tp.topic for tp in ranges}
                if not unreadable:
                    raise
                ranges = {tp: bounds for tp, bounds in ranges.items() if tp.topic not in unreadable}
        return newest

    async def read(
        self, ranges: dict[TopicPartition, tuple[int, int]], *, seconds: float = 30.0
    ) -> AsyncIterator[Any]:
        """Records in offset ranges (see ``read_ranges``)."""
        async for record in read_ranges(self._consumer, ranges, seconds=seconds):
            yield record


async def read_ranges(
    consumer: Any, ranges: dict[TopicPartition, tuple[int, int]], *, seconds: float = 30.0
) -> AsyncIterator[Any]:
    """The records of each partition from ``start`` (inclusive) to ``end`` (exclusive), in offset order per
    partition, with ``consumer`` assigned to those partitions. Offsets removed by retention or compaction are
    simply absent. TimeoutError after ``seconds``."""
    pending = {tp: bounds for tp, bounds in ranges.items() if bounds[1] > bounds[0]}
    if not pending:
        return
    consumer.assign(list(pending))
    for tp, (start, _) in pending.items():
        consumer.seek(tp, max(0, start))
    deadline = time.monotonic() + seconds  # not asyncio.timeout: it must not span the yields
    while pending:
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp][1]:
                del pending[tp]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {sorted(tp.topic for tp in pending)} took over {seconds}s")
        batches = await consumer.getmany(*pending, timeout_ms=200, max_records=2000)
        for tp, records in batches.items():
            end = pending.get(tp, (0, 0))[1]
            for record in records:
                if record.offset < end:
                    yield record
