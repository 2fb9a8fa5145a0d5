"""The MAPPA panels the scheme was asked to attend, as the coordinator records them
(``circles.coordinator.records.v1``), for the partner API: an agency sees them on its own referrals."""

from __future__ import annotations

import json
import uuid

from schemas.events.coordinator import MappaPanelRecorded
from schemas.partner_api import MappaPanelView
from schemas.topics import COORDINATOR_RECORDS
from services.runtime.kafka import CompactedView


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


class MappaPanels:
    def __init__(self, bootstrap_servers: str, prefix: str = "") -> None:
        self.view: CompactedView[MappaPanelRecorded | None] = CompactedView(
            bootstrap_servers,
            prefix + COORDINATOR_RECORDS.name,
            panel_of,
            client_id="circles-referrals-api-panels",
        )

    def of(self, referral_id: uuid.UUID) -> list[MappaPanelView]:
        return panels_of(list(self.view.values()), referral_id)
