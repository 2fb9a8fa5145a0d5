"""Encoding and decoding records with their personal fields sealed (what ``Sealer`` does as the runtime's
codec; also used as functions by tests and benchmarks)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from schemas.envelope import Envelope, Event, decode, encode, encode_key_and_headers
from schemas.personal import personal_paths
from services.runtime.codec import PLAIN

if TYPE_CHECKING:
    from services.protection.sealer import Sealer


async def encode_record(
    event: Event, envelope: Envelope, sealer: Sealer | None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the record carrying ``event``, its personal fields sealed.

    Refuses (``SealingRequired``) to write personal data in the clear from a process that has no keys."""
    if sealer is None:
        return await PLAIN.encode(event, envelope)
    subject = event.data_subject()
    if subject is None or not personal_paths(type(event)):
        return encode(event, envelope)
    key, headers = encode_key_and_headers(event, envelope)  # the value is written sealed, below
    data = await sealer.seal_json(type(event), event.model_dump(mode="json"), subject)
    return key, json.dumps(data, separators=(",", ":")).encode(), headers


async def decode_record(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    known: dict[str, type[Event]],
    sealer: Sealer | None,
) -> tuple[Envelope, Event]:
    """``schemas.envelope.decode`` with sealed fields opened; ``KeyDestroyed`` for an erased subject."""
    if sealer is None:
        return decode(value, headers, known)
    await sealer.prepare([value])
    return decode(value, headers, known, opener=sealer.open_json)
