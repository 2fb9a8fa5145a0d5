"""A process's data keys on disk (``KeyStore`` over a ``StoredView``): kept across a restart, indexed by
subject, and a destroyed key gone from the store's files, not only from its answers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from services.protection.errors import KeyDestroyed
from services.protection.keks import LocalKeks
from services.protection.keystore import KeyStore
from services.protection.sealing import DataKey
from tests.keystores import keystore_on_disk

KEKS = LocalKeks({"k1": os.urandom(32)}, "k1")


def on_disk(directory: Path) -> KeyStore:
    return keystore_on_disk(directory, KEKS)


def same(one: DataKey, other: DataKey) -> bool:
    """The same key: what one seals, the other opens."""
    return one.dek_id == other.dek_id and other.open(one.seal("value", ("f",)), ("f",)) == "value"


def files_holding(directory: Path, value: bytes) -> list[str]:
    return [path.name for path in directory.rglob("*") if path.is_file() and value in path.read_bytes()]


async def test_keys_are_found_again_after_a_restart_by_id_and_by_subject(tmp_path: Path) -> None:
    store = on_disk(tmp_path)
    first = await store.ensure("referral:1")
    other = await store.ensure("referral:2")
    await store.stop()

    again = on_disk(tmp_path)
    try:
        assert len(again) == 2
        assert again.knows(first.dek_id)
        assert same(again.key(first.dek_id), first)
        current = again.current("referral:2")
        assert current is not None and same(current, other)
        assert (await again.ensure("referral:1")).dek_id == first.dek_id  # no second key after a restart
        assert again.subjects() == {"referral:1", "referral:2"}
    finally:
        await again.stop()


async def test_a_destroyed_key_is_gone_from_the_answers_and_from_the_files_of_the_store(
    tmp_path: Path,
) -> None:
    store = on_disk(tmp_path)
    in_table = await store.ensure("referral:in-a-table-file")
    kept = await store.ensure("referral:kept")
    for n in range(2_000):  # enough for the records to make a table file of a few blocks
        await store.ensure(f"referral:{n}")
    db = store._view.store.db
    db.flush()  # the first key's record now sits in a (compressed) table file
    tables_before = {file["name"] for file in db.live_files()}
    in_log = await store.ensure("referral:only-in-the-log")
    logged = store._view.get(in_log.dek_id) or b""
    assert files_holding(tmp_path, logged), "the test must see the record on disk first (the log)"

    assert await store.destroy("referral:in-a-table-file") == 1
    assert await store.destroy("referral:only-in-the-log") == 1
    for gone in (in_table, in_log):
        assert not store.knows(gone.dek_id)
        with pytest.raises(KeyDestroyed):
            store.key(gone.dek_id)
    assert store.current("referral:in-a-table-file") is None
    assert files_holding(tmp_path, logged) == []  # the write-ahead log holding it is gone
    holding = [
        file["name"]
        for file in db.live_files()
        if file["start_key"] <= b"v\x00\x00" + in_table.dek_id.encode() <= file["end_key"]
    ]
    assert not set(holding) & tables_before  # every table file that held it was rewritten without it
    assert same(store.key(kept.dek_id), kept)
    await store.stop()

    again = on_disk(tmp_path)
    try:
        assert not again.knows(in_table.dek_id) and not again.knows(in_log.dek_id)
        assert again.knows(kept.dek_id)
        assert "referral:in-a-table-file" not in again.subjects()
    finally:
        await again.stop()


async def test_unwrapped_keys_in_memory_are_bounded(tmp_path: Path, monkeypatch: object) -> None:
    import services.protection.keystore as keystore

    setattr(keystore, "UNWRAPPED", 10)  # noqa: B010
    try:
        store = on_disk(tmp_path)
        keys = await asyncio.gather(*(store.ensure(f"referral:{n}") for n in range(50)))
        assert len(store._unwrapped) == 10
        assert all(same(store.key(key.dek_id), key) for key in keys)  # unwrapped again from disk
        await store.stop()
    finally:
        setattr(keystore, "UNWRAPPED", 50_000)  # noqa: B010
