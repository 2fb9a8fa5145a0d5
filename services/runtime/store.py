"""A local on-disk copy of some partitions of a compacted topic (RocksDB through ``rocksdict``).

What a state table or a large view holds, kept between restarts so that a restart only catches up from
where the copy left off instead of reading the whole topic again. Each partition's copy is checkpointed
with the topic offset it reflects, written in the same atomic batch as the values: the copy is always the
topic's state up to that offset (a crash between writing the topic and the copy leaves the copy behind,
never ahead, and the next start reads the rest from the topic). The topic stays the backup: a lost,
stale or foreign copy is rebuilt from it.

Secondary indexes (``name`` → sortable text per key, e.g. the date a deferred referral is due) are kept
in the same batches, so a timer can find what is due without reading every value.

Layout (keys are bytes; ``pp`` is the partition as two bytes, so each partition is one key range):
``v pp key`` → value; ``p pp`` → "offset time"; ``n pp`` → count; ``i pp name \\0 text \\0 key`` → b"";
``r pp name \\0 key`` → text (to remove a key's old index entry); ``m`` → the layout (index names).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from services.runtime.logs import get_logger

log = get_logger(__name__)
SEP = b"\x00"


@dataclass(frozen=True)
class Change:
    """One key's new value (``None``: deleted) and its index texts (``None``: not in that index)."""

    key: str
    value: bytes | None
    index: Mapping[str, str | None] = field(default_factory=dict)


def _pp(partition: int) -> bytes:
    return partition.to_bytes(2, "big")


def _after(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1]) if prefix[-1] < 255 else prefix + b"\xff" * 8


class LocalStore:
    """One RocksDB directory. ``directory=None`` (or one another process has open): a temporary copy,
    deleted on close, so the caller falls back to reading the topic (correct, only slower)."""

    def __init__(self, directory: Path | None, name: str) -> None:
        self.name = name
        self._wanted = directory
        self._temporary: Path | None = None
        self._db: Rdict | None = None

    @property
    def persistent(self) -> bool:
        return self._db is not None and self._temporary is None

    def open(self) -> None:
        if self._db is not None:
            return
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        if self._wanted is not None:
            self._wanted.mkdir(parents=True, exist_ok=True)
            try:
                self._db = Rdict(str(self._wanted), options)
                return
            except Exception as error:  # rocksdict raises a bare Exception, e.g. for the lock
                log.warning("state_store_unavailable", store=self.name, error=str(error)[:200])
        self._temporary = Path(tempfile.mkdtemp(prefix=f"circles-{self.name.replace('/', '-')}-"))
        self._db = Rdict(str(self._temporary), options)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    @property
    def db(self) -> Rdict:
        assert self._db is not None, "the store is not open"
        return self._db

    # -- reading --------------------------------------------------------------------------------------------

    def checkpoint(self, partition: int) -> tuple[int, float] | None:
        """(offset the partition's copy reflects, when it was written) or None: no copy."""
        raw = self.db.get(b"p" + _pp(partition))
        if raw is None:
            return None
        offset, _, written = raw.decode().partition(" ")
        return int(offset), float(written or 0)

    def layout(self) -> str | None:
        """What the caller said its copy's layout is (its index names): a change means a rebuild."""
        raw = self.db.get(b"m")
        return raw.decode() if raw is not None else None

    def set_layout(self, layout: str) -> None:
        self.db.put(b"m", layout.encode())

    def get(self, partition: int, key: str) -> bytes | None:
        value: bytes | None = self.db.get(b"v" + _pp(partition) + key.encode())
        return value

    def count(self, partition: int) -> int:
        raw = self.db.get(b"n" + _pp(partition))
        return int(raw) if raw else 0

    def scan(self, partition: int) -> Iterator[tuple[str, bytes]]:
        prefix = b"v" + _pp(partition)
        for key, value in self._range(prefix, _after(prefix)):
            yield key[len(prefix) :].decode(), value

    def indexed(
        self, name: str, partition: int, *, upto: str | None = None, equal: str | None = None
    ) -> Iterator[tuple[str, str]]:
        """(text, key) of the index ``name`` in text order: all, those ≤ ``upto``, or those = ``equal``."""
        prefix = b"i" + _pp(partition) + name.encode() + SEP
        start, end = prefix, _after(prefix)
        if equal is not None:
            start = prefix + equal.encode() + SEP
            end = _after(start)
        elif upto is not None:
            end = prefix + upto.encode() + b"\x01"  # texts equal to upto (then \0 key) sort before this
        for raw, _ in self._range(start, end):
            text, _, key = raw[len(prefix) :].partition(SEP)
            yield text.decode(), key.decode()

    def _range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        iterator = self.db.iter()
        iterator.seek(start)
        while iterator.valid():
            key = iterator.key()
            if key >= end:
                return
            yield key, iterator.value()
            iterator.next()

    # -- writing --------------------------------------------------------------------------------------------

    def write(
        self, partition: int, changes: Iterable[Change], offset: int | None, since: float | None = None
    ) -> None:
        """Apply ``changes`` and, if given, checkpoint the partition at ``offset``: one atomic batch.
        ``since``: when the copy was last known to follow the topic (default now), what ``resume_at``
        judges a copy's age by."""
        db, pp = self.db, _pp(partition)
        batch = WriteBatch(raw_mode=True)
        count = self.count(partition)
        seen: dict[bytes, bool] = {}  # keys this batch has written (present or not), before the db knows
        moved: dict[bytes, bytes | None] = {}  # index text per reverse key, as of this batch
        for change in changes:
            key = change.key.encode()
            vkey = b"v" + pp + key
            existed = seen[vkey] if vkey in seen else db.get(vkey) is not None
            if change.value is None:
                if existed:
                    batch.delete(vkey)
                    count -= 1
            else:
                batch.put(vkey, change.value)
                count += 0 if existed else 1
            seen[vkey] = change.value is not None
            for name, text in change.index.items():
                rkey = b"r" + pp + name.encode() + SEP + key
                old = moved[rkey] if rkey in moved else db.get(rkey)
                entry = b"i" + pp + name.encode() + SEP
                if old is not None:
                    batch.delete(entry + old + SEP + key)
                if text is None or change.value is None:
                    batch.delete(rkey)
                    moved[rkey] = None
                else:
                    batch.put(entry + text.encode() + SEP + key, b"")
                    batch.put(rkey, text.encode())
                    moved[rkey] = text.encode()
        batch.put(b"n" + pp, str(count).encode())
        if offset is not None:
            batch.put(b"p" + pp, f"{offset} {time.time() if since is None else since:.0f}".encode())
        db.write(batch)

    def forget(self, partition: int, keys: Iterable[str]) -> None:
        """Make deleted ``keys`` leave the disk now: a RocksDB delete only writes a tombstone, and the old
        value stays in the write-ahead log and in table files until a compaction drops it. Flushing makes the
        log obsolete (RocksDB removes it) and a compaction of each key's range rewrites the table files
        holding it without the value (RocksDB removes the old files)."""
        wanted = [b"v" + _pp(partition) + key.encode() for key in keys]
        if not wanted:
            return
        self.db.flush()
        for vkey in wanted:
            self.db.compact_range(vkey, vkey + SEP)

    def resume_at(self, partition: int, beginning: int, end: int, stale_after_s: float) -> int:
        """Where the partition's copy goes on from, given the topic's ``beginning`` and ``end``: its
        checkpoint, or (reset) the beginning when the copy is missing, ahead of the topic (recreated),
        behind its beginning (records deleted), or checkpointed longer than ``stale_after_s`` ago with
        records after it (compaction may have removed a tombstone it never saw)."""
        checkpoint = self.checkpoint(partition)
        if checkpoint is not None:
            offset, written = checkpoint
            old = offset < end and time.time() - written > stale_after_s
            if beginning <= offset <= end and not old:
                return offset
            log.info("state_copy_rebuilt", store=self.name, partition=partition, checkpoint=offset, old=old)
        self.reset(partition)
        return beginning

    def reset(self, partition: int) -> None:
        """Forget the partition's copy (it is then read again from the beginning of the topic)."""
        pp = _pp(partition)
        for kind in (b"v", b"i", b"r"):
            self.db.delete_range(kind + pp, _after(kind + pp))
        self.db.delete(b"n" + pp)
        self.db.delete(b"p" + pp)
