"""Who submitted an inbound Kafka record: an HMAC-SHA256 signature with the agency's own Kafka signing key.

Kafka tells a consumer nothing about the principal that produced a record, and every agency system shares
one write-only principal (``circles-partner-agencies``), so the record's ``ce_source`` alone proves nothing:
agency A could write ``ce_source: /agencies/B``. Each agency gets its own signing key when it is registered
(``circles agency add``; ``rotate-key`` issues a new one), kept on the agencies topic that only the platform
reads. The agency system signs what makes the submission (the CloudEvents id, source, type and time exactly
as the header bytes it sends, and a SHA-256 of the record's value) and sends the signature in the
``circles-signature`` header; the referrals worker verifies it with the key of the agency ``ce_source`` names
before anything else, and dead-letters a record that is unsigned, malformed, altered or signed with another
agency's key. Only the holder of B's key can submit as B.

The signed message (UTF-8, lines joined by ``\\n``, no trailing newline)::

    circles-inbound-v1
    <ce_id header>
    <ce_source header>
    <ce_type header>
    <ce_time header>
    <hex SHA-256 of the record value>

and the header value is ``v1=<hex HMAC-SHA256(key, message)>``. A replayed record is harmless: the same
agency reference and content make the same referral once (the worker de-duplicates).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

SIGNATURE_HEADER = "circles-signature"
VERSION = "v1"
SIGNED_HEADERS: Sequence[str] = ("ce_id", "ce_source", "ce_type", "ce_time")
_DOMAIN = b"circles-inbound-v1"


class SignatureRefused(Exception):
    """Why a record's signature does not hold; safe to log and dead-letter (no secret, no content)."""


def _header_values(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for name, value in headers:
        if value is not None:
            found.setdefault(name, []).append(value)
    return found


def signed_message(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> bytes:
    """The bytes an agency signs. Raises ``SignatureRefused`` when a signed header is missing, repeated or
    holds a line break (each must be exactly one line for the message to be unambiguous)."""
    found = _header_values(headers)
    lines = [_DOMAIN]
    for name in SIGNED_HEADERS:
        values = found.get(name, [])
        if len(values) != 1:
            raise SignatureRefused(f"signed header {name} {'missing' if not values else 'repeated'}")
        if b"\n" in values[0] or b"\r" in values[0]:
            raise SignatureRefused(f"signed header {name} holds a line break")
        lines.append(values[0])
    lines.append(hashlib.sha256(value or b"").hexdigest().encode())
    return b"\n".join(lines)


def sign(key: str, headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> str:
    """The ``circles-signature`` header value for a record with these headers and value."""
    digest = hmac.new(key.encode(), signed_message(headers, value), hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def signed_headers(
    key: str, headers: Sequence[tuple[str, bytes]], value: bytes | None
) -> list[tuple[str, bytes]]:
    """``headers`` with the signature added (what an agency system sends)."""
    return [*headers, (SIGNATURE_HEADER, sign(key, headers, value).encode())]


def verify(
    agency_id: str, key: str | None, headers: Iterable[tuple[str, bytes | None]], value: bytes | None
) -> None:
    """Accept the record as ``agency_id``'s (whose key is ``key``), or raise ``SignatureRefused``."""
    listed = list(headers)
    signatures = _header_values(listed).get(SIGNATURE_HEADER, [])
    if not signatures:
        raise SignatureRefused(f"unsigned: no {SIGNATURE_HEADER} header (every Kafka submission is signed)")
    if len(signatures) > 1:
        raise SignatureRefused(f"more than one {SIGNATURE_HEADER} header")
    if key is None:
        raise SignatureRefused(
            f"agency {agency_id!r} has no Kafka signing key yet (`circles agency rotate-key` issues one)"
        )
    version, _, given = signatures[0].decode("ascii", errors="replace").partition("=")
    if version != VERSION or not given:
        raise SignatureRefused(f"{SIGNATURE_HEADER} is not {VERSION}=<hex>")
    expected = sign(key, listed, value).partition("=")[2]
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", errors="replace")):
        raise SignatureRefused(
            f"signature does not verify with the key of agency {agency_id!r} (ce_source): forged, altered "
            "or signed with another key"
        )
