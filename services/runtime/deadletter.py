"""The one dead-letter format: ``<topic>.dlq`` gets the original key, bytes and headers, plus why.

Added headers: ``dlq_error`` (safe to show: never quotes the input), ``dlq_service``, ``dlq_topic``,
``dlq_partition``, ``dlq_offset``, ``dlq_time``, and ``dlq_value_dropped`` when the value was too large to
keep (see ``MAX_VALUE``). Replaying a dead letter strips them again; one without its value is not replayed.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from schemas.envelope import UndecodableRecord, describe

DLQ_PREFIX = "dlq_"
MAX_ERROR = 2000
MAX_VALUE = 1_000_000
"""Bytes of value a dead letter keeps, sealed or not. A record is at most 1 MiB (the producer's and the
broker's default), and sealing a whole value makes it 1.8 times as large: a larger dead letter would stop
its worker at every restart. It goes without its value instead, ``VALUE_DROPPED`` giving the value's size;
the original stays on its topic (``dlq_partition``, ``dlq_offset``) for the topic's retention."""
VALUE_DROPPED = "dlq_value_dropped"


class ProcessingError(Exception):
    """A domain-level refusal whose message is safe to log and dead-letter (ids and codes only)."""


def safe_error(error: BaseException) -> str:
    """Why a record failed, without the exception text of unknown errors (it may quote personal data)."""
    if isinstance(error, UndecodableRecord):
        return error.reason
    if isinstance(error, ProcessingError):
        return str(error)
    if isinstance(error, ValidationError):
        return f"invalid data: {describe(error)}"
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}{where}"


def as_header_list(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> list[tuple[str, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, value) for name, value in items if value is not None]


def dead_letter_headers(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
    *,
    error: str,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    kept = [(name, value) for name, value in as_header_list(headers) if not name.startswith(DLQ_PREFIX)]
    return [
        *kept,
        ("dlq_error", error[:MAX_ERROR].encode()),
        ("dlq_service", service.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
        ("dlq_time", (now or datetime.now(UTC)).isoformat().encode()),
    ]


def original_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The headers a dead letter had before it was dead-lettered (for replay)."""
    return [(name, value) for name, value in as_header_list(headers) if not name.startswith(DLQ_PREFIX)]
