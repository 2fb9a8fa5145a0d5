"""CloudEvents 1.0 envelope carried in Kafka headers (binary content mode) and the record codec.

The record value is the event's JSON; ``datacontenttype`` maps to the ``content-type`` header and every
other attribute to a ``ce_``-prefixed UTF-8 header. ``correlationid`` follows a referral from its HTTP
request to its last notification; ``causationid`` names the event that caused this one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, ValidationError

from schemas.common import Contract

Headers = Sequence[tuple[str, bytes]]
E = TypeVar("E", bound="Event")


class Event(Contract):
    """Base of every event. Subclasses name their CloudEvents type and their partition key."""

    event_type: ClassVar[str]

    def partition_key(self) -> str:
        raise NotImplementedError

    def data_subject(self) -> str | None:
        """Whom the event's personal fields (``x-personal-data``) are about, e.g. ``referral:<id>``: they are
        sealed with that subject's data key when written to Kafka. None: nothing to seal."""
        return None


class Envelope(Contract):
    id: uuid.UUID
    type: str
    source: str
    time: AwareDatetime
    correlationid: str
    specversion: Literal["1.0"] = "1.0"
    subject: str | None = None
    causationid: uuid.UUID | None = None
    datacontenttype: Literal["application/json"] = "application/json"

    @classmethod
    def for_event(
        cls,
        event: Event,
        *,
        source: str,
        correlation_id: str,
        cause: Envelope | None = None,
        event_id: uuid.UUID | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        return cls(
            id=event_id or uuid.uuid4(),
            type=event.event_type,
            source=source,
            time=time or datetime.now(UTC),
            correlationid=correlation_id,
            subject=event.partition_key(),
            causationid=cause.id if cause else None,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            header = "content-type" if name == "datacontenttype" else f"ce_{name}"
            out.append((header, str(value).encode()))
        return out

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes | None]]) -> Envelope:
        attributes: dict[str, str] = {}
        for name, raw in headers:
            if raw is None:
                continue
            if name.startswith("ce_"):
                attributes[name[3:]] = raw.decode("utf-8", errors="replace")
            elif name == "content-type":
                attributes["datacontenttype"] = raw.decode("utf-8", errors="replace")
        return cls.model_validate(attributes)


class UndecodableRecord(Exception):
    """A record that is not a valid event; ``reason`` is safe to log (it never quotes the input)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe(error: ValidationError) -> str:
    """Every field error on one line, without the offending values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(body)'}: {item['msg']} [{item['type']}]"
        for item in error.errors(include_input=False, include_url=False, include_context=False)
    )


def encode(event: Event, envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record carrying ``event``."""
    key, headers = encode_key_and_headers(event, envelope)
    return key, event.model_dump_json().encode(), headers


def encode_key_and_headers(event: Event, envelope: Envelope) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``encode`` without the value (for a codec that writes the value its own way: sealed)."""
    if envelope.type != event.event_type:
        raise ValueError(f"envelope type {envelope.type} does not match event {event.event_type}")
    return event.partition_key().encode(), envelope.headers()


Opener = Callable[[type[Event], Any], Any]
"""Turns a record's JSON (with sealed personal fields) into the event's plain JSON."""


def decode(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    known: dict[str, type[Event]],
    opener: Opener | None = None,
) -> tuple[Envelope, Event]:
    """Parse a record into its envelope and event, or raise UndecodableRecord with a safe reason.

    With an ``opener``, sealed fields are opened first (it raises ``KeyDestroyed`` for an erased subject)."""
    try:
        envelope = Envelope.from_headers(headers)
    except ValidationError as error:
        raise UndecodableRecord(f"CloudEvents headers invalid: {describe(error)}") from None
    model = known.get(envelope.type)
    if model is None:
        raise UndecodableRecord(f"unknown event type {envelope.type!r} for this topic")
    if value is None:
        raise UndecodableRecord("record has no value")
    try:
        if opener is None:
            return envelope, model.model_validate_json(value)
        try:
            data = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser recurses
            raise UndecodableRecord(f"{envelope.type} invalid: not JSON") from None
        try:
            opened = opener(model, data)
        except ValueError:
            raise UndecodableRecord(f"{envelope.type} invalid: a sealed field could not be opened") from None
        return envelope, model.model_validate(opened)
    except ValidationError as error:
        raise UndecodableRecord(f"{envelope.type} invalid: {describe(error)}") from None


def decode_as(
    model: type[E], value: bytes, headers: Iterable[tuple[str, bytes | None]]
) -> tuple[Envelope, E]:
    envelope, event = decode(value, headers, {model.event_type: model})
    assert isinstance(event, model)
    return envelope, event
