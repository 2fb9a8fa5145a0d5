"""A key store on disk whose writes are acknowledged at once, for unit tests of what is built on it (the
broker's part is the integration tests')."""

from __future__ import annotations

from pathlib import Path

from services.protection.keks import LocalKeks
from services.protection.keystore import KeyRecord, KeyStore


def keystore_on_disk(directory: Path, keks: LocalKeks) -> KeyStore:
    store = KeyStore("127.0.0.1:9", "keys", keks, directory=directory)

    async def acknowledged(dek_id: str, record: KeyRecord | None) -> None:
        store._changed(dek_id, record)

    async def synced() -> None:
        pass

    store._write = acknowledged  # type: ignore[method-assign]
    store.sync = synced  # type: ignore[method-assign]
    return store
