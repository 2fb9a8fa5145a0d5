"""A process's sealing and opening of personal fields, over the keystores of the subjects it handles.

Records are sealed as they are written (events by their ``data_subject()``, table values by their key) and
opened as they are read, so handlers and domain code only ever see whole, plain models.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.topics import SUBJECT_KEYS
from services.protection.errors import KeyDestroyed
from services.protection.keystore import KeyStore
from services.protection.sealing import (
    PREFIX,
    DataKey,
    open_sealed,
    personal_paths,
    seal,
    sealed_key_ids,
)
from services.runtime.settings import RuntimeSettings

M = TypeVar("M", bound=BaseModel)
WHOLE_RECORD = ("(record)",)
SEALED_HEADER = "circles_sealed"
"""Header of a record whose whole value is sealed (``seal_bytes``); the value is opened before decoding."""


class Sealer:
    def __init__(self, stores: Mapping[str, KeyStore]) -> None:
        """``stores``: subject kind (``referral``, ``volunteer``...) → the keystore of those subjects."""
        self.stores = dict(stores)

    async def start(self) -> None:
        for store in self._distinct():
            await store.start()

    async def stop(self) -> None:
        for store in self._distinct():
            await store.stop()

    def _distinct(self) -> list[KeyStore]:
        """Each keystore once (several subject kinds may share one keys topic)."""
        return list({id(store): store for store in self.stores.values()}.values())

    def store_for(self, subject: str) -> KeyStore:
        kind = subject.split(":", 1)[0]
        store = self.stores.get(kind)
        if store is None:
            raise LookupError(f"this process holds no keys for {kind} subjects")
        return store

    async def seal_json(self, model: type[BaseModel], data: Any, subject: str) -> Any:
        paths = personal_paths(model)
        if not paths:
            return data
        key = await self.store_for(subject).ensure(subject)
        return seal(data, paths, key)

    async def prepare(self, raw_values: Iterable[bytes | None]) -> None:
        """Read the keys topics up to date if any of these records uses a key this process has not seen."""
        wanted = set().union(*(sealed_key_ids(raw) for raw in raw_values if raw))
        if any(not self._known(dek_id) for dek_id in wanted):
            await self.sync()

    def open_json(self, model: type[BaseModel], data: Any) -> Any:
        paths = personal_paths(model)
        return open_sealed(data, paths, self.key) if paths else data

    def parse(self, model: type[M], raw: bytes) -> M:
        """A record value of ``model`` with its sealed fields opened (``KeyDestroyed``: an erased subject)."""
        return model.model_validate(self.open_json(model, json.loads(raw)))

    def parser(self, model: type[M]) -> Callable[[bytes], M]:
        return lambda raw: self.parse(model, raw)

    async def seal_bytes(self, raw: bytes, subject: str) -> bytes:
        """A whole record value sealed (a dead letter of plain personal data, for instance)."""
        key = await self.store_for(subject).ensure(subject)
        return key.seal(base64.b64encode(raw).decode(), WHOLE_RECORD).encode()

    async def open_bytes(self, sealed: bytes) -> bytes:
        await self.prepare([sealed])
        text = sealed.decode()
        return base64.b64decode(self.key(text[len(PREFIX) : len(PREFIX) + 32]).open(text, WHOLE_RECORD))

    def key(self, dek_id: str) -> DataKey:
        for store in self._distinct():
            if store.knows(dek_id):
                return store.key(dek_id)
        raise KeyDestroyed(dek_id)

    def _known(self, dek_id: str) -> bool:
        return any(store.knows(dek_id) for store in self.stores.values())

    async def destroy(self, subject: str) -> int:
        return await self.store_for(subject).destroy(subject)

    async def sync(self) -> None:
        for store in self._distinct():
            await store.sync()


def build_sealer(settings: RuntimeSettings, kinds: Iterable[str], client_id: str = "circles-keys") -> Sealer:
    """A sealer over the keys topics of ``kinds`` (``referral``, ``volunteer``, ``coordinator``)."""
    keks, prefix, bootstrap = settings.keks(), settings.topic_prefix, settings.bootstrap_servers()
    by_topic: dict[str, KeyStore] = {}
    stores = {}
    for kind in kinds:
        topic = prefix + SUBJECT_KEYS[kind].name
        if topic not in by_topic:
            by_topic[topic] = KeyStore(bootstrap, topic, keks, client_id=client_id)
        stores[kind] = by_topic[topic]
    return Sealer(stores)
