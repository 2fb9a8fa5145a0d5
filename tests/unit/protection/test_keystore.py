"""A batch's new subjects get their data keys written together, and never two keys for one subject."""

from __future__ import annotations

import asyncio
import os

from services.protection.keks import LocalKeks
from services.protection.keystore import KeyRecord, KeyStore


class SlowBroker:
    """Stands in for the acknowledgement round trip only: the concurrency rule is what is under test."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.in_flight = 0
        self.most_in_flight = 0
        self.writes: list[str] = []

    async def write(self, dek_id: str, record: KeyRecord | None) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.writes.append(dek_id)
        self.store._changed(dek_id, record)


def store_with_slow_broker() -> tuple[KeyStore, SlowBroker]:
    store = KeyStore("127.0.0.1:9", "keys", LocalKeks({"k1": os.urandom(32)}, "k1"))
    broker = SlowBroker(store)
    store._write = broker.write  # type: ignore[method-assign]
    return store, broker


async def test_new_subjects_keys_are_written_together_and_one_subject_gets_one_key() -> None:
    store, broker = store_with_slow_broker()
    subjects = [f"referral:{n}" for n in range(20)]
    keys = await asyncio.gather(*(store.ensure(subject) for subject in subjects + subjects))
    assert len(broker.writes) == 20
    assert broker.most_in_flight == 20
    assert [key.dek_id for key in keys[:20]] == [key.dek_id for key in keys[20:]]
    assert (await store.ensure("referral:3")).dek_id == keys[3].dek_id
    assert len(broker.writes) == 20
