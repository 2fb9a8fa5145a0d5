"""A whole compacted topic kept on disk: what a process reads every record of (the partner API's referrals,
every data key of a keys topic) without reading the topic again at every start.

``StoredView`` holds the latest raw value of each key of every partition in a ``LocalStore`` (RocksDB),
checkpointed with the offset each partition's copy reflects (written in the same batch as the values). A
start opens the store and reads each partition only from its checkpoint; ``sync()`` returns once the copy
has caught up with what was written before the call, so a process is ready only after catching up. A
partition whose copy is missing, ahead of the topic (recreated), behind its start (records deleted) or
stale is read again from the beginning: a copy that has not been at the topic's end for ``STALE_AFTER_S``
may have missed a tombstone that compaction has since removed, and reading on from its offset would keep
a deleted key (a destroyed data key, say). So a checkpoint's time is when the copy was last at the end
(or, while it catches up, the time of the checkpoint it resumed from), never merely when it was written.

Values stay raw (sealed fields sealed); readers parse what they look up. Secondary indexes (``indexes``:
name → text of a raw value) are kept in the same batches. With ``forget_deleted``, a deleted key's old
value is made to leave the disk at once (``LocalStore.forget``), not at RocksDB's next compaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.runtime.kafka_security import security_options
from services.runtime.logs import get_logger
from services.runtime.store import Change, LocalStore
from services.runtime.supervision import supervise
from services.runtime.tables import STALE_AFTER_S, partition_of

log = get_logger(__name__)
REFRESH_S = 60.0
"""How often a view that is following its topic writes its checkpoint again (position and time) when
nothing new arrived, so that a copy that followed the topic until it stopped is not taken for stale."""
Index = Callable[[bytes], str | None]


class StoredView:
    """Every partition of ``topic``, latest raw value per key, on disk (see the module docstring)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        partitions: int,
        *,
        directory: Path | None,
        client_id: str,
        indexes: Mapping[str, Index] | None = None,
        prepare: Callable[[list[bytes]], Awaitable[None]] | None = None,
        on_change: Callable[[str, bytes | None], None] | None = None,
        forget_deleted: bool = False,
    ) -> None:
        """``directory``: the store's (None: a temporary one, the whole topic read at every start);
        ``prepare``: awaited with a batch's values before they are stored (a sealer fetching their data
        keys, so that a stored value can be opened); ``on_change``: told of each stored record."""
        self.topic = topic
        self.store = LocalStore(directory, topic)
        self._indexes = dict(indexes or {})
        self._prepare = prepare
        self._on_change = on_change
        self._forget_deleted = forget_deleted
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_partition_fetch_bytes": 8 * 1024 * 1024,
            "fetch_max_bytes": 64 * 1024 * 1024,
        }
        self._consumer: Any = None
        self._partitions = partitions
        self._positions: dict[int, int] = {}
        self._checkpointed: dict[int, tuple[int, float]] = {}
        self._since: dict[int, float] = {}
        """Per partition, when the copy last reflected the whole partition (its position at the topic's
        end), or the checkpoint's own time while catching up: only records written after it can be
        missing from the copy, which is what makes a copy stale (``resume_at``)."""
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Condition()
        self._opened = False
        self.read = 0
        """Records read from the topic since the start (0 when the copy was up to date)."""

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _open(self) -> LocalStore:
        if not self._opened:
            self.store.open()
            layout = ",".join(sorted(self._indexes))
            if self.store.layout() != layout:  # indexes added or removed: every copy is built again
                self.store.db.delete_range(b"", b"\xff")
                self.store.set_layout(layout)
            self._opened = True
        return self.store

    async def start(self) -> None:
        """Open the store and start reading each partition from its checkpoint (``sync()`` to catch up)."""
        self._open()
        self._consumer = AIOKafkaConsumer(**self._options, **security_options())
        await self._consumer.start()
        try:
            async with asyncio.timeout(30):
                await self._exists()
        except TimeoutError:
            await self._consumer.stop()
            self._consumer = None
            raise LookupError(f"topic {self.topic} does not exist: create the topics first") from None
        tps = [TopicPartition(self.topic, p) for p in range(self._partitions)]
        self._consumer.assign(tps)
        beginnings = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        asked = time.time()
        for tp in tps:
            position = self.store.resume_at(tp.partition, beginnings[tp], ends[tp], STALE_AFTER_S)
            checkpoint = self.store.checkpoint(tp.partition)
            if checkpoint is not None:  # resumed: as fresh as its checkpoint until it reaches the end
                self._checkpointed[tp.partition] = checkpoint
                self._since[tp.partition] = asked if position >= ends[tp] else checkpoint[1]
            else:  # read again from the beginning: what it reads is the topic as it is now
                self._since[tp.partition] = asked
            self._consumer.seek(tp, position)
            self._positions[tp.partition] = position
        self._task = supervise(f"stored-view:{self.topic}", self._step)

    async def _exists(self) -> None:
        """Return once the broker knows the topic (a topic created just before may take a moment)."""
        for _ in range(1_000_000):
            if self.topic in await self._consumer.topics():
                return
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            if self.store.persistent:  # how far it followed, and since when
                for partition, position in self._positions.items():
                    self._checkpoint(partition, position)
            await self._consumer.stop()
            self._consumer = None
        self.store.close()
        self._opened = False

    # -- following the topic --------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Return once every record written before this call is in the store (wrap in a timeout)."""
        tps = [TopicPartition(self.topic, p) for p in range(self._partitions)]
        ends = await self._consumer.end_offsets(tps)
        async with self._progress:
            await self._progress.wait_for(
                lambda: all(self._positions.get(tp.partition, -1) >= end for tp, end in ends.items())
            )

    async def caught_up(self, stalled_s: float = 120.0) -> None:
        """``sync()``, however long catching up takes as long as it progresses: ``TimeoutError`` only when
        no record was read for ``stalled_s`` (a first start reads the whole topic: a million records take
        minutes, and a bound on the whole wait would stop it before it is done)."""
        while True:
            read = self.read
            try:
                async with asyncio.timeout(stalled_s):
                    await self.sync()
                return
            except TimeoutError:
                if self.read == read:
                    raise

    async def _step(self) -> None:
        """Read what is new into the store (supervised: a failure is retried from the same position)."""
        asked = time.time()
        fetched = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
        if self._prepare is not None:
            await self._prepare([r.value for records in fetched.values() for r in records if r.value])
        for tp, records in fetched.items():
            changes = [self._change(r.key.decode(), r.value) for r in records if r.key is not None]
            since = self._since.get(tp.partition, asked)
            self.store.write(tp.partition, changes, records[-1].offset + 1, since)
            self._checkpointed[tp.partition] = (records[-1].offset + 1, since)
            self.read += len(records)
            deleted = [change.key for change in changes if change.value is None]
            if self._forget_deleted and deleted:
                self.store.forget(tp.partition, deleted)
            if self._on_change is not None:
                for change in changes:
                    self._on_change(change.key, change.value)
        for tp in self._consumer.assignment():
            position = await self._consumer.position(tp)
            self._positions[tp.partition] = position
            highwater = self._consumer.highwater(tp)
            if highwater is not None and position >= highwater:
                self._since[tp.partition] = asked  # at the end: nothing older can be missing
            since = self._since.get(tp.partition, asked)
            written = self._checkpointed.get(tp.partition)
            if written is None or written[0] != position or since - written[1] > REFRESH_S:
                self._checkpoint(tp.partition, position)  # compaction leaves gaps; keep the copy fresh
        async with self._progress:
            self._progress.notify_all()

    def _checkpoint(self, partition: int, position: int) -> None:
        since = self._since.get(partition, time.time())
        self.store.write(partition, [], position, since)
        self._checkpointed[partition] = (position, since)

    def _change(self, key: str, value: bytes | None) -> Change:
        index: dict[str, str | None] = {}
        for name, text_of in self._indexes.items():
            try:
                index[name] = text_of(value) if value is not None else None
            except Exception:  # a value that does not parse is in no index (it is still stored)
                index[name] = None
        return Change(key, value, index)

    # -- reading and writing ahead --------------------------------------------------------------------------

    def partition(self, key: str) -> int:
        return partition_of(key, self._partitions)

    def write_ahead(self, key: str, value: bytes | None) -> None:
        """A record this process has written and the broker acknowledged, stored before the view reads it
        back (the checkpoint stays where it is: the view stores it again when it gets there). A deletion
        is made to leave the disk as the view's own do (``forget_deleted``)."""
        partition = self.partition(key)
        self._open().write(partition, [self._change(key, value)], None)
        if value is None and self._forget_deleted:
            self.store.forget(partition, [key])

    def get(self, key: str) -> bytes | None:
        return self._open().get(self.partition(key), key)

    def items(self) -> Iterator[tuple[str, bytes]]:
        store = self._open()
        for partition in range(self._partitions):
            yield from store.scan(partition)

    def indexed(self, name: str, *, equal: str | None = None) -> Iterator[tuple[str, str]]:
        """(text, key) of the index ``name``, every partition: all, or those whose text is ``equal``."""
        store = self._open()
        for partition in range(self._partitions):
            yield from store.indexed(name, partition, equal=equal)

    def __len__(self) -> int:
        store = self._open()
        return sum(store.count(partition) for partition in range(self._partitions))
