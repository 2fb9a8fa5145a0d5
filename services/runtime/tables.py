"""State tables: key → pydantic model, partitioned like the topics keyed the same way, kept on disk
(``LocalStore``, one per worker and table) and backed by a compacted changelog topic.

A restart opens the table's store and reads the changelog only from the offset each partition's copy was
checkpointed at (what another worker wrote meanwhile included); a partition whose copy is missing, stale
or ahead of the changelog is read again from the beginning. Values are parsed on first read and a few are
kept parsed in memory (``CACHE_SIZE``); indexes (``index``) let timers find what is due without a scan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from pydantic import BaseModel

from schemas.topics import TopicSpec
from services.runtime.codec import PLAIN, Codec, check_table
from services.runtime.kafka_security import security_options
from services.runtime.logs import get_logger
from services.runtime.store import Change, LocalStore

log = get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
CACHE_SIZE = 20_000
"""Parsed values kept in memory per table (the most recently used)."""
STALE_AFTER_S = 12 * 3600.0
"""A copy last checkpointed longer ago than this, with changelog records after it, is read again from the
beginning: compaction may have removed a tombstone it never saw (Kafka keeps them ``delete.retention.ms``,
24 h by default), and reading on from its offset would keep the deleted key."""
_MISSING: Any = object()


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2), as every producer here uses."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class NotHeld(LookupError):
    """The key belongs to a partition this worker does not hold (a bug, or a rebalance under way)."""


@dataclass(frozen=True)
class Written(Generic[M]):
    """A changelog record acknowledged by the broker, to be applied to the table."""

    key: str
    value: M | None
    raw: bytes | None
    partition: int
    offset: int


class StateTable(Generic[M]):
    """One worker's share of a table (see the module docstring)."""

    def __init__(
        self,
        name: str,
        model: type[M],
        changelog: TopicSpec,
        prefix: str = "",
        *,
        subject: str | None = None,
        codec: Codec = PLAIN,
        directory: Path | None = None,
    ) -> None:
        """``subject``: the kind of data subject the keys are (``referral``: the key is a referral id) when
        values hold personal fields; ``codec`` seals them with that subject's data key. ``directory``: where
        the table's store lives (None: a temporary one, read from the changelog at every start)."""
        self.name = name
        self.model = model
        self.subject = subject
        self.codec = codec
        self.sealed = check_table(codec, name, model, subject)
        self.topic = prefix + changelog.name
        self.partitions = changelog.partitions
        self.store = LocalStore(directory, name)
        self._held: frozenset[int] = frozenset()
        self._positions: dict[int, int | None] = {}
        self._cache: OrderedDict[str, M] = OrderedDict()
        self._indexes: dict[str, tuple[type[BaseModel] | None, Callable[[Any], str | None]]] = {}

    def index(
        self, name: str, text_of: Callable[[Any], str | None], view: type[BaseModel] | None = None
    ) -> None:
        """Keep an index ``name`` for ``indexed``: each value's text (sortable; None: not in the index),
        ``text_of`` given the value, or only the fields of it that ``view`` (a model ignoring the others)
        reads from the stored JSON: for a sealed table, a view of unsealed fields costs no opening, which
        matters when a copy is built from the changelog."""
        self._indexes[name] = (view, text_of)

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    @property
    def held(self) -> frozenset[int]:
        return self._held

    def get(self, key: str) -> M | None:
        partition = self._check(key)
        value = self._cache.get(key, _MISSING)
        if value is not _MISSING:
            self._cache.move_to_end(key)
            return value  # type: ignore[no-any-return]
        raw = self.store.get(partition, key)
        if raw is None:
            return None
        parsed = self._parse(raw)
        self._remember(key, parsed)
        return parsed

    def _parse(self, raw: bytes) -> M:
        return self.codec.parse(self.model, raw)

    def _remember(self, key: str, value: M) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def items(self) -> Iterator[tuple[str, M]]:
        """Every key and value held (read from disk: prefer an index where a timer needs a few)."""
        for partition in sorted(self._held):
            for key, raw in self.store.scan(partition):
                value = self._cache.get(key)
                yield key, value if value is not None else self._parse(raw)

    def values(self) -> Iterator[M]:
        return (value for _, value in self.items())

    def __len__(self) -> int:
        return sum(self.store.count(partition) for partition in self._held)

    def indexed(self, name: str, *, upto: str | None = None, equal: str | None = None) -> Iterator[str]:
        """Keys in the index ``name`` (held partitions, text order within each): all, those whose text is
        ≤ ``upto``, or those whose text is ``equal``."""
        assert name in self._indexes, f"{self.name} has no index {name}"
        for partition in sorted(self._held):
            for _, key in self.store.indexed(name, partition, upto=upto, equal=equal):
                yield key

    async def encode(self, key: str, value: M | None) -> bytes | None:
        if value is None:
            return None
        return await self.codec.encode_value(
            self.model, value, f"{self.subject}:{key}" if self.sealed else None
        )

    def apply(self, written: Iterable[Written[M]]) -> None:
        """Acknowledged changelog records, in offset order per partition: into the store (with the offset
        reached, when it follows on from the copy's checkpoint) and the cache."""
        by_partition: dict[int, list[Written[M]]] = {}
        for record in written:
            by_partition.setdefault(record.partition, []).append(record)
        for partition, records in by_partition.items():
            if partition not in self._held:
                continue  # given away meanwhile: its next holder reads these from the changelog
            position = self._positions.get(partition)
            for record in records:
                if position is not None and record.offset == position:
                    position += 1
                elif position is not None:
                    log.warning("state_checkpoint_gap", table=self.name, partition=partition)
                    position = None  # a record not written here: read again from the checkpoint next time
            self.store.write(partition, [self._change(r.key, r.value, r.raw) for r in records], position)
            self._positions[partition] = position
            for record in records:
                if record.value is None:
                    self._cache.pop(record.key, None)
                else:
                    self._remember(record.key, record.value)

    def _change(self, key: str, value: M | None, raw: bytes | None) -> Change:
        """The store change for a value (parsed, or None: parsed from ``raw`` where an index needs it)."""
        index: dict[str, str | None] = {}
        views: dict[type[BaseModel] | None, Any] = {}
        for name, (view, text_of) in self._indexes.items():
            if raw is None:
                index[name] = None
                continue
            if view not in views:
                views[view] = self._view(view, value, raw)
            index[name] = text_of(views[view]) if views[view] is not None else None
        return Change(key, raw, index)

    def _view(self, view: type[BaseModel] | None, value: M | None, raw: bytes) -> Any:
        try:
            if view is not None:
                return view.model_validate_json(raw)
            return value if value is not None else self._parse(raw)
        except Exception:  # an erased subject's old record, say: in no index (a later record fixes it)
            return None

    def _check(self, key: str) -> int:
        partition = self.partition(key)
        if partition not in self._held:
            raise NotHeld(f"{self.name}: key in partition {partition}, not held by this worker")
        return partition

    async def recover(self, bootstrap_servers: str, partitions: set[int], **options: Any) -> int:
        """Hold exactly ``partitions``, each brought up to the end of the changelog from its store's
        checkpoint (or from the beginning). Returns how many changelog records were read."""
        self.store.open()
        layout = ",".join(sorted(self._indexes))
        if self.store.layout() != layout:  # indexes added or removed: every copy is built again
            for partition in range(self.partitions):
                self.store.reset(partition)
            self.store.set_layout(layout)
        self._held = frozenset(partitions)
        self._cache.clear()  # values of partitions given away may change under another worker
        if not partitions:
            # A worker may hold none of a table (a second matching worker holds no inbox). No consumer then:
            # aiokafka's stop() right after start() raises CancelledError (aio-libs/aiokafka#647), which
            # killed that worker at every rebalance.
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            client_id=f"recover-{self.name}",
            **options,
            **security_options(),
        )
        await consumer.start()
        read = 0
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            beginnings = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            pending = set()
            for tp in tps:
                position = self.store.resume_at(tp.partition, beginnings[tp], ends[tp], STALE_AFTER_S)
                if position < ends[tp]:
                    consumer.seek(tp, position)
                    pending.add(tp)
                else:
                    self._positions[tp.partition] = position
            while pending:
                fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=20_000)
                for tp, records in fetched.items():
                    read += len(records)
                    await self._catch_up(tp.partition, records)
                for tp in list(pending):
                    position = await consumer.position(tp)
                    if position >= ends[tp]:
                        self.store.write(tp.partition, [], ends[tp])  # compaction leaves offset gaps
                        self._positions[tp.partition] = ends[tp]
                        pending.discard(tp)
        finally:
            await consumer.stop()
        return read

    async def _catch_up(self, partition: int, records: list[Any]) -> None:
        """Changelog records read on recovery, into the store with the offset they reach."""
        if not records:
            return
        if self.sealed:  # the data keys of what was read, for when the values are parsed
            await self.codec.prepare(record.value for record in records)
        changes = [
            self._change(record.key.decode(), None, record.value)
            for record in records
            if record.key is not None
        ]
        self.store.write(partition, changes, records[-1].offset + 1)

    def close(self) -> None:
        self._held = frozenset()
        self._cache.clear()
        self.store.close()
