"""How records are turned into bytes and back: the runtime's codec, handed in by the service.

The runtime (worker, unit of work, tables, publisher, views) encodes and decodes through a ``Codec``. A
service that holds personal data gives it the sealing codec of ``services.protection`` (its ``Sealer``),
which seals personal fields on write and opens them on read; every other process uses ``PLAIN``, which
refuses to write personal data in the clear (``SealingRequired``) and cannot read sealed records. So the
runtime is the ground floor: it imports nothing from ``services.protection``, which builds on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from pydantic import BaseModel

from schemas.envelope import Envelope, Event, UndecodableRecord, decode, encode
from schemas.personal import personal_paths

M = TypeVar("M", bound=BaseModel)
RecordHeaders = list[tuple[str, bytes]]
SEALED_HEADER = "circles_sealed"
"""Header of a record whose whole value is sealed (``seal_record``); the value is opened before decoding."""


class Erased(LookupError):
    """The record's data subject was erased: what was sealed can never be read again (skip the record)."""


class SealingRequired(RuntimeError):
    """A record holding personal data was about to be written in the clear (a process without keys)."""


class Codec(Protocol):
    """Encoding and decoding of events, table values and whole raw records."""

    async def start(self) -> None:
        """Before first use (a sealing codec reads its keys); the worker starts the codec it is given."""
        ...

    async def stop(self) -> None: ...

    async def encode(self, event: Event, envelope: Envelope) -> tuple[bytes, bytes, RecordHeaders]:
        """Key, value and headers of the record carrying ``event``."""
        ...

    async def decode(
        self, value: bytes | None, headers: Iterable[tuple[str, bytes | None]], known: dict[str, type[Event]]
    ) -> tuple[Envelope, Event]:
        """The record's envelope and event; ``UndecodableRecord`` (safe reason), ``Erased``."""
        ...

    async def encode_value(self, model: type[M], value: M, subject: str | None) -> bytes:
        """A table value; ``subject`` names whose personal data it holds (``referral:<id>``), if any."""
        ...

    def parse(self, model: type[M], raw: bytes) -> M:
        """A table or view value back (``Erased`` for an erased subject)."""
        ...

    async def prepare(self, raw_values: Iterable[bytes | None]) -> None:
        """Fetch what ``parse`` will need for these values (the data keys they were sealed with)."""
        ...

    async def seal_record(self, value: bytes, subject: str) -> bytes:
        """A whole raw value (a dead letter of plain personal data) sealed under ``subject``'s key."""
        ...

    def holds_personal(self, model: type[BaseModel]) -> bool:
        """Whether values of ``model`` hold personal fields that this codec seals."""
        ...


class PlainCodec:
    """JSON as the contracts define it, for processes that hold no data keys."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def encode(self, event: Event, envelope: Envelope) -> tuple[bytes, bytes, RecordHeaders]:
        if event.data_subject() is not None and personal_paths(type(event)):
            raise SealingRequired(f"{event.event_type} holds personal data and this process has no data keys")
        return encode(event, envelope)

    async def decode(
        self, value: bytes | None, headers: Iterable[tuple[str, bytes | None]], known: dict[str, type[Event]]
    ) -> tuple[Envelope, Event]:
        headers = list(headers)
        if value is not None and any(name == SEALED_HEADER for name, _ in headers):
            raise UndecodableRecord("a sealed record, and this service has no data keys")
        return decode(value, headers, known)

    async def encode_value(self, model: type[M], value: M, subject: str | None) -> bytes:
        return value.model_dump_json().encode()

    def parse(self, model: type[M], raw: bytes) -> M:
        return model.model_validate_json(raw)

    async def prepare(self, raw_values: Iterable[bytes | None]) -> None:
        return None

    async def seal_record(self, value: bytes, subject: str) -> bytes:
        raise SealingRequired(f"{subject}: a sealed record needs data keys")

    def holds_personal(self, model: type[BaseModel]) -> bool:
        return False


PLAIN: Codec = PlainCodec()


def check_table(codec: Codec, name: str, model: type[BaseModel], subject: str | None) -> bool:
    """Whether a table's values are sealed; refuses a table of personal data without a sealing codec."""
    personal = subject is not None and bool(personal_paths(model))
    if personal and not codec.holds_personal(model):
        raise SealingRequired(f"table {name} holds personal data: give its worker a sealing codec")
    return personal
