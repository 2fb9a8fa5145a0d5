"""State tables: key → pydantic model, partitioned like the topics keyed the same way, and recovered
from a compacted changelog topic for the partitions this worker holds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from pydantic import BaseModel

from schemas.topics import TopicSpec
from services.protection.errors import SealingRequired
from services.protection.sealing import personal_paths

if TYPE_CHECKING:
    from services.protection.sealer import Sealer

M = TypeVar("M", bound=BaseModel)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2), as every producer here uses."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class NotHeld(LookupError):
    """The key belongs to a partition this worker does not hold (a bug, or a rebalance under way)."""


class StateTable(Generic[M]):
    """One worker's share of a table. Values are parsed from their changelog JSON on first read.

    Each shard remembers the changelog offset it reflects, so a partition that comes back after a
    rebalance catches up from there (including what another worker wrote meanwhile) instead of being
    read again from the beginning.
    """

    def __init__(
        self,
        name: str,
        model: type[M],
        changelog: TopicSpec,
        prefix: str = "",
        *,
        subject: str | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        """``subject``: the kind of data subject the keys are (``referral``: the key is a referral id) when
        values hold personal fields; they are sealed with that subject's data key by ``sealer``."""
        self.name = name
        self.model = model
        self.subject = subject
        self.sealer = sealer
        self.sealed = subject is not None and bool(personal_paths(model))
        if self.sealed and sealer is None:
            raise SealingRequired(f"table {name} holds personal data: give it a sealer")
        self.topic = prefix + changelog.name
        self.partitions = changelog.partitions
        self._shards: dict[int, dict[str, bytes | M]] = {}
        self._positions: dict[int, int] = {}

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._shards)

    def get(self, key: str) -> M | None:
        shard = self._shard(key)
        value = shard.get(key)
        if isinstance(value, bytes):
            value = self._parse(value)
            shard[key] = value
        return value

    def _parse(self, raw: bytes) -> M:
        if self.sealed:
            assert self.sealer is not None
            return self.sealer.parse(self.model, raw)
        return self.model.model_validate_json(raw)

    def store(self, key: str, value: M | None) -> None:
        """Change the in-memory copy; the unit of work has already written the changelog."""
        shard = self._shard(key)
        if value is None:
            shard.pop(key, None)
        else:
            shard[key] = value

    def items(self) -> Iterator[tuple[str, M]]:
        for shard in list(self._shards.values()):
            for key in list(shard):
                value = self.get(key)
                if value is not None:
                    yield key, value

    def values(self) -> Iterator[M]:
        return (value for _, value in self.items())

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards.values())

    def written(self, partition: int, offset: int) -> None:
        """The changelog record at ``offset`` is reflected in memory."""
        if partition in self._shards:
            self._positions[partition] = max(self._positions.get(partition, 0), offset + 1)

    async def encode(self, key: str, value: M | None) -> bytes | None:
        if value is None:
            return None
        if not self.sealed:
            return value.model_dump_json().encode()
        assert self.sealer is not None
        data = await self.sealer.seal_json(self.model, value.model_dump(mode="json"), f"{self.subject}:{key}")
        return json.dumps(data, separators=(",", ":")).encode()

    def _shard(self, key: str) -> dict[str, bytes | M]:
        shard = self._shards.get(self.partition(key))
        if shard is None:
            raise NotHeld(f"{self.name}: key in partition {self.partition(key)}, not held by this worker")
        return shard

    async def recover(self, bootstrap_servers: str, partitions: set[int], **options: Any) -> int:
        """Hold exactly ``partitions``: drop the others, read new ones from the beginning of the changelog and
        bring retained ones up to its end. Returns how many changelog records were read."""
        self.release(self.held - partitions)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            client_id=f"recover-{self.name}",
            **options,
        )
        await consumer.start()
        read = 0
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            beginnings = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                position = self._positions.get(tp.partition)
                if tp.partition not in self._shards or position is None or position < beginnings[tp]:
                    self._shards[tp.partition] = {}
                    position = beginnings[tp]
                consumer.seek(tp, position)
            pending = set(tps)
            while pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        self._positions[tp.partition] = ends[tp]
                        pending.discard(tp)
                if not pending:
                    break
                for tp, records in (
                    await consumer.getmany(*pending, timeout_ms=500, max_records=20_000)
                ).items():
                    shard = self._shards[tp.partition]
                    for record in records:
                        read += 1
                        if record.key is None:
                            continue
                        key = record.key.decode()
                        if record.value is None:
                            shard.pop(key, None)
                        else:
                            shard[key] = record.value
        finally:
            await consumer.stop()
        if self.sealed and read:
            assert self.sealer is not None
            await self.sealer.sync()  # every key sealing what was read was written before it
        return read

    def release(self, partitions: Iterable[int]) -> None:
        for partition in list(partitions):
            self._shards.pop(partition, None)
            self._positions.pop(partition, None)
