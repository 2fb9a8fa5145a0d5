"""The MAPPA panels the scheme was asked to attend, as the coordinator records them
(``circles.coordinator.records.v1``), for the partner API: an agency sees them on its own referrals.

The topic is kept on disk (``StoredView``, checkpointed: a start reads only what is new) with an index by
referral, so a referral's panels are looked up, not found by reading every record (issue 13)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from schemas.events.coordinator import MappaPanelRecorded
from schemas.partner_api import MappaPanelView
from schemas.topics import COORDINATOR_RECORDS
from services.runtime.views import StoredView


def panel_of(raw: bytes) -> MappaPanelRecorded | None:
    """Panels only: the topic's other records (mentoring sessions, audits) are not the partners' business."""
    data = json.loads(raw)
    return MappaPanelRecorded.model_validate(data) if "panel_id" in data else None


def panels_of(records: list[MappaPanelRecorded | None], referral_id: uuid.UUID) -> list[MappaPanelView]:
    found = [r for r in records if r is not None and r.referral_id == referral_id]
    found.sort(key=lambda r: (r.held_on, r.recorded_at))
    return [
        MappaPanelView(panel_id=r.panel_id, level=r.level, held_on=r.held_on, attended=r.attended)
        for r in found
    ]


def referral_of(raw: bytes) -> str | None:
    """The index of panels by referral (the topic's other records are in no index)."""
    panel = panel_of(raw)
    return str(panel.referral_id) if panel is not None else None


class MappaPanels:
    def __init__(self, bootstrap_servers: str, prefix: str = "", directory: Path | None = None) -> None:
        """``directory``: where the copy of the records topic lives (None: a temporary one)."""
        self.view = StoredView(
            bootstrap_servers,
            prefix + COORDINATOR_RECORDS.name,
            COORDINATOR_RECORDS.partitions,
            directory=directory,
            client_id="circles-referrals-api-panels",
            indexes={"referral": referral_of},
        )

    def of(self, referral_id: uuid.UUID) -> list[MappaPanelView]:
        records = []
        for _, key in self.view.indexed("referral", equal=str(referral_id)):
            raw = self.view.get(key)
            if raw is not None:
                records.append(panel_of(raw))
        return panels_of(records, referral_id)
