"""Per-subject data keys on a compacted keys topic, wrapped by a key-encryption key.

A subject is what personal data is about: ``referral:<id>``, ``volunteer:<id>``. Each data key is one record
keyed by its id, holding the subject and the key wrapped by the KEK (the subject is the wrap's associated
data, so a wrapped key cannot be passed off as another subject's). A key is written, and acknowledged by
the broker, before anything sealed with it, so a reader that meets an unknown key id reads the keys topic
to its end and then either has the key or knows it was destroyed.

Destroying a subject's keys writes tombstones: the process forgets them at once; the broker's compaction
(tuned on the keys topics, see the catalogue) removes the wrapped keys from its log soon after. Without the
key, the sealed fields in every other topic, replica and backup are noise.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime

from schemas.common import Contract
from services.protection.errors import KeyDestroyed
from services.protection.keks import KeyEncryptionKeys, WrappedKey
from services.protection.sealing import DataKey
from services.runtime.kafka import CompactedView, RenewingProducer, producer
from services.runtime.logs import get_logger

log = get_logger(__name__)


class KeyRecord(Contract):
    """A data key as stored on the keys topic (never in the clear)."""

    subject: str
    kek_id: str
    wrapped: str  # base64 of nonce | ciphertext | tag
    created_at: AwareDatetime


class KeyStore:
    """One keys topic as one process sees it; ``writer`` processes may create and destroy keys."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        keks: KeyEncryptionKeys,
        *,
        client_id: str = "circles-keys",
        linger_ms: int | None = None,
    ) -> None:
        """``linger_ms``: the key writer's (default ``producer()``'s); 0 in an API, where a request waits
        for its new key's acknowledgement."""
        self._overrides: dict[str, int] = {} if linger_ms is None else {"linger_ms": linger_ms}
        self.topic = topic
        self._keks = keks
        self._bootstrap = bootstrap_servers
        self._records: dict[str, KeyRecord] = {}
        self._by_subject: dict[str, set[str]] = {}
        self._unwrapped: dict[str, DataKey] = {}
        self._creating: dict[str, asyncio.Task[DataKey]] = {}
        self._view: CompactedView[KeyRecord] = CompactedView(
            bootstrap_servers,
            topic,
            KeyRecord.model_validate_json,
            on_change=self._changed,
            client_id=client_id,
        )
        self._producer: RenewingProducer | None = None

    async def start(self) -> None:
        self._producer = RenewingProducer(
            lambda: producer(self._bootstrap, client_id="circles-keys", **self._overrides), "circles-keys"
        )
        await self._producer.start()
        await self._view.start()
        await self._view.sync()

    async def stop(self) -> None:
        await self._view.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def sync(self) -> None:
        """Catch up with every key written (or destroyed) before this call."""
        await self._view.sync()

    def _changed(self, dek_id: str, record: KeyRecord | None) -> None:
        old = self._records.pop(dek_id, None)
        if old is not None:
            self._by_subject.get(old.subject, set()).discard(dek_id)
        if record is None:
            self._unwrapped.pop(dek_id, None)
            return
        self._records[dek_id] = record
        self._by_subject.setdefault(record.subject, set()).add(dek_id)

    def key(self, dek_id: str) -> DataKey:
        """The data key ``dek_id``; ``KeyDestroyed`` if this process has no record of it (after ``sync``)."""
        found = self._unwrapped.get(dek_id)
        if found is not None:
            return found
        record = self._records.get(dek_id)
        if record is None:
            raise KeyDestroyed(dek_id)
        raw = self._keks.unwrap(
            WrappedKey(record.kek_id, base64.b64decode(record.wrapped)), record.subject.encode()
        )
        found = self._unwrapped[dek_id] = DataKey(dek_id, record.subject, raw)
        return found

    def knows(self, dek_id: str) -> bool:
        return dek_id in self._records

    def current(self, subject: str) -> DataKey | None:
        """The subject's newest data key, if it has one."""
        ids = self._by_subject.get(subject)
        if not ids:
            return None
        newest = max(ids, key=lambda dek_id: (self._records[dek_id].created_at, dek_id))
        return self.key(newest)

    async def ensure(self, subject: str) -> DataKey:
        """The subject's data key, created (and acknowledged by the broker) if it has none yet.

        Safe to call concurrently: a batch's new subjects get their keys written together (one round trip,
        not one each), and two calls for the same subject share one new key."""
        found = self.current(subject)
        if found is not None:
            return found
        creating = self._creating.get(subject)
        if creating is None:
            creating = self._creating[subject] = asyncio.ensure_future(self._create(subject))
            creating.add_done_callback(lambda _: self._creating.pop(subject, None))
        return await asyncio.shield(creating)

    async def _create(self, subject: str) -> DataKey:
        dek_id = uuid.uuid4().hex
        raw = os.urandom(32)
        wrapped = self._keks.wrap(raw, subject.encode())
        record = KeyRecord(
            subject=subject,
            kek_id=wrapped.kek_id,
            wrapped=base64.b64encode(wrapped.blob).decode(),
            created_at=datetime.now(UTC),
        )
        await self._write(dek_id, record)
        self._unwrapped[dek_id] = DataKey(dek_id, subject, raw)
        return self._unwrapped[dek_id]

    async def destroy(self, subject: str) -> int:
        """Tombstone every data key of ``subject``; returns how many there were."""
        await self.sync()
        ids = sorted(self._by_subject.get(subject, set()))
        for dek_id in ids:
            await self._write(dek_id, None)
        if ids:
            log.info("data_keys_destroyed", subject=subject, keys=len(ids))
        return len(ids)

    async def rewrap(self) -> int:
        """Wrap every data key under the primary KEK again (after a new KEK was added); returns how many."""
        await self.sync()
        count = 0
        for dek_id, record in list(self._records.items()):
            if record.kek_id == self._keks.primary_id:
                continue
            raw = self._keks.unwrap(
                WrappedKey(record.kek_id, base64.b64decode(record.wrapped)), record.subject.encode()
            )
            wrapped = self._keks.wrap(raw, record.subject.encode())
            await self._write(
                dek_id,
                record.model_copy(
                    update={"kek_id": wrapped.kek_id, "wrapped": base64.b64encode(wrapped.blob).decode()}
                ),
            )
            count += 1
        return count

    def kek_counts(self) -> dict[str, int]:
        """How many data keys each KEK wraps: a KEK may leave the file once it wraps none."""
        counts: dict[str, int] = {}
        for record in self._records.values():
            counts[record.kek_id] = counts.get(record.kek_id, 0) + 1
        return counts

    async def _write(self, dek_id: str, record: KeyRecord | None) -> None:
        value = None if record is None else record.model_dump_json().encode()
        assert self._producer is not None, "a key store that writes is started first"
        await (await self._producer.send(self.topic, value, key=dek_id.encode()))
        self._changed(dek_id, record)

    def subjects(self) -> set[str]:
        return {subject for subject, ids in self._by_subject.items() if ids}

    def __len__(self) -> int:
        return len(self._records)
