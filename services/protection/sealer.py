"""A process's sealing and opening of personal fields, over the keystores of the subjects it handles.

Records are sealed as they are written (events by their ``data_subject()``, table values by their key) and
opened as they are read, so handlers and domain code only ever see whole, plain models.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.envelope import Envelope, Event, UndecodableRecord
from schemas.personal import personal_paths
from schemas.topics import SUBJECT_KEYS
from services.protection.codec import decode_record, encode_record
from services.protection.errors import KekError, KeyDestroyed
from services.protection.keks import LocalKeks
from services.protection.keystore import KeyStore
from services.protection.sealing import (
    PREFIX,
    DataKey,
    holds_personal,
    open_sealed,
    seal,
    sealed_key_ids,
)
from services.runtime.codec import SEALED_HEADER, RecordHeaders
from services.runtime.settings import ConfigurationError, RuntimeSettings
from services.runtime.stack_record import read_record
from services.runtime.supervision import together

M = TypeVar("M", bound=BaseModel)
WHOLE_RECORD = ("(record)",)


class Sealer:
    """The runtime's ``Codec`` (``services.runtime.codec``) for a process holding data keys."""

    def __init__(self, stores: Mapping[str, KeyStore]) -> None:
        """``stores``: subject kind (``referral``, ``volunteer``...) → the keystore of those subjects."""
        self.stores = dict(stores)

    async def start(self) -> None:
        await together(*(store.start() for store in self.keystores()))

    async def stop(self) -> None:
        for store in self.keystores():
            await store.stop()

    def keystores(self) -> list[KeyStore]:
        """Each keystore once (several subject kinds may share one keys topic)."""
        return list({id(store): store for store in self.stores.values()}.values())

    def store_for(self, subject: str) -> KeyStore:
        kind = subject.split(":", 1)[0]
        store = self.stores.get(kind)
        if store is None:
            raise LookupError(f"this process holds no keys for {kind} subjects")
        return store

    async def seal_json(self, model: type[BaseModel], data: Any, subject: str) -> Any:
        """``data`` with its personal fields sealed under the subject's data key. A record with no personal
        value (an erased referral) needs no key: none is created, so an erased subject stays keyless."""
        paths = personal_paths(model)
        if not paths or not holds_personal(data, paths):
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
        if not personal_paths(model):
            return model.model_validate_json(raw)
        return model.model_validate(self.open_json(model, json.loads(raw)))

    def parser(self, model: type[M]) -> Callable[[bytes], M]:
        return lambda raw: self.parse(model, raw)

    # -- the runtime's Codec ---------------------------------------------------------------------------------

    async def encode(self, event: Event, envelope: Envelope) -> tuple[bytes, bytes, RecordHeaders]:
        return await encode_record(event, envelope, self)

    async def decode(
        self, value: bytes | None, headers: Iterable[tuple[str, bytes | None]], known: dict[str, type[Event]]
    ) -> tuple[Envelope, Event]:
        headers = list(headers)
        if value is not None and any(name == SEALED_HEADER for name, _ in headers):
            try:
                value = await self.open_bytes(value)
            except ValueError:
                raise UndecodableRecord("a sealed record could not be opened") from None
        return await decode_record(value, headers, known, self)

    async def encode_value(self, model: type[M], value: M, subject: str | None) -> bytes:
        if subject is None or not personal_paths(model):
            return value.model_dump_json().encode()
        data = await self.seal_json(model, value.model_dump(mode="json"), subject)
        return json.dumps(data, separators=(",", ":")).encode()

    async def seal_record(self, value: bytes, subject: str) -> bytes:
        return await self.seal_bytes(value, subject)

    def holds_personal(self, model: type[BaseModel]) -> bool:
        return True

    # -------------------------------------------------------------------------------------------------------

    async def seal_bytes(self, raw: bytes, subject: str) -> bytes:
        """A whole record value sealed (a dead letter of plain personal data, for instance)."""
        key = await self.store_for(subject).ensure(subject)
        return key.seal(base64.b64encode(raw).decode(), WHOLE_RECORD).encode()

    async def open_bytes(self, sealed: bytes) -> bytes:
        await self.prepare([sealed])
        text = sealed.decode()
        return base64.b64decode(self.key(text[len(PREFIX) : len(PREFIX) + 32]).open(text, WHOLE_RECORD))

    def key(self, dek_id: str) -> DataKey:
        for store in self.keystores():
            if store.knows(dek_id):
                return store.key(dek_id)
        raise KeyDestroyed(dek_id)

    def _known(self, dek_id: str) -> bool:
        return any(store.knows(dek_id) for store in self.stores.values())

    async def destroy(self, subject: str) -> int:
        return await self.store_for(subject).destroy(subject)

    async def sync(self) -> None:
        for store in self.keystores():
            await store.sync()


def build_sealer(
    settings: RuntimeSettings,
    kinds: Iterable[str],
    client_id: str = "circles-keys",
    *,
    directory: Path | None = None,
    linger_ms: int | None = None,
) -> Sealer:
    """A sealer over the keys topics of ``kinds`` (``referral``, ``volunteer``, ``coordinator``).

    ``directory``: a long-running process's state directory (``RuntimeSettings.state_dir``), where each
    keys topic's copy is kept between starts; None (a one-off command): temporary copies. ``linger_ms``
    for its key writers (see ``KeyStore``)."""
    keks, prefix, bootstrap = keks_of(settings), settings.topic_prefix, settings.bootstrap_servers()
    by_topic: dict[str, KeyStore] = {}
    stores = {}
    for kind in kinds:
        spec = SUBJECT_KEYS[kind]
        topic = prefix + spec.name
        if topic not in by_topic:
            by_topic[topic] = KeyStore(
                bootstrap,
                topic,
                keks,
                client_id=client_id,
                partitions=spec.partitions,
                directory=directory / spec.name if directory is not None else None,
                linger_ms=linger_ms,
            )
        stores[kind] = by_topic[topic]
    return Sealer(stores)


def keks_of(settings: RuntimeSettings) -> LocalKeks:
    """The key-encryption keys that wrap the data keys of personal data (``CIRCLES_KEK``, ``CIRCLES_KEK_FILE``
    or ``<data dir>/kek.json``)."""
    if settings.kek is not None:
        return LocalKeks.from_base64(settings.kek.get_secret_value())
    record = read_record(settings.data_dir)
    if settings.kek_file is None and record is not None and record.kek_inline:
        raise ConfigurationError(
            f"no key-encryption key: the stack running on {settings.data_dir} was given CIRCLES_KEK; "
            "set the same CIRCLES_KEK here"
        )
    path = settings.kek_file or settings.data_dir / "kek.json"
    if settings.kek_file is None and not path.exists():
        raise ConfigurationError(
            "no key-encryption key: set CIRCLES_KEK_FILE (create one with `circles keys new-kek PATH`) "
            "or CIRCLES_KEK; `make run` makes one in its data directory"
        )
    try:
        return LocalKeks.from_file(path)
    except KekError as error:
        raise ConfigurationError(str(error)) from None
