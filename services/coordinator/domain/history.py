"""The archive of public facts the commissioner's return is computed from: one record per event (its id
the key), kept on a compacted topic, so that the history outlives the source topics' retention."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime

from schemas.common import Contract
from schemas.envelope import Event
from schemas.topics import EVENT_TYPES


class ArchivedEvent(Contract):
    event_id: str
    event_type: str
    at: AwareDatetime
    event: dict[str, Any]


def archived(event_id: str, event: Event, at: AwareDatetime) -> ArchivedEvent:
    return ArchivedEvent(
        event_id=event_id, event_type=event.event_type, at=at, event=event.model_dump(mode="json")
    )


def unarchived(entries: list[ArchivedEvent]) -> list[Event]:
    """The events back, oldest first (events of types this build does not know are left out)."""
    known = [entry for entry in entries if entry.event_type in EVENT_TYPES]
    known.sort(key=lambda entry: (entry.at, entry.event_id))
    return [EVENT_TYPES[entry.event_type].model_validate(entry.event) for entry in known]
