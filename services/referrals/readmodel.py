"""What the partner API answers from.

Referral records come from the worker's state topic (compacted; the worker is their single writer).
Submissions this API process has just accepted, and the worker has not applied yet, are held as
``Pending`` so that a GET straight after a POST finds the referral ("received") instead of a 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from schemas.common import ReferralStatus
from schemas.partner_api import Decision, HistoryEntry
from schemas.topics import REFERRALS_STATE
from services.protection.sealer import Sealer
from services.referrals.domain.referral import ReferralEntry, ReferralRecord
from services.runtime.kafka import CompactedView


@dataclass(frozen=True)
class Pending:
    referral_id: uuid.UUID
    agency_id: str
    agency_reference: str
    version: int
    fingerprint: str | None
    status: ReferralStatus
    submitted_at: datetime
    updated_at: datetime
    decision: Decision | None = None
    history: tuple[HistoryEntry, ...] = ()


Referral = ReferralRecord | Pending


class ReferralIndex:
    """Records by id and by agency, with this process's pending submissions laid over them."""

    def __init__(self) -> None:
        self._records: dict[uuid.UUID, ReferralRecord] = {}
        self._by_agency: dict[str, set[uuid.UUID]] = {}
        self._pending: dict[uuid.UUID, Pending] = {}

    def apply(self, record: ReferralRecord) -> None:
        self._records[record.referral_id] = record
        self._by_agency.setdefault(record.agency_id, set()).add(record.referral_id)
        pending = self._pending.get(record.referral_id)
        if pending and _caught_up(record, pending):
            del self._pending[record.referral_id]

    def add_pending(self, pending: Pending) -> None:
        self._pending[pending.referral_id] = pending
        self._by_agency.setdefault(pending.agency_id, set()).add(pending.referral_id)

    def get(self, referral_id: uuid.UUID) -> Referral | None:
        return self._pending.get(referral_id) or self._records.get(referral_id)

    def owned_by(self, referral_id: uuid.UUID, agency_id: str) -> Referral | None:
        """Another agency's referral is indistinguishable from an unknown one."""
        referral = self.get(referral_id)
        return referral if referral is not None and referral.agency_id == agency_id else None

    def of_agency(self, agency_id: str) -> list[Referral]:
        found = (self.get(referral_id) for referral_id in self._by_agency.get(agency_id, set()))
        return [referral for referral in found if referral is not None]

    def __len__(self) -> int:
        return len(self._records.keys() | self._pending.keys())


def _caught_up(record: ReferralRecord, pending: Pending) -> bool:
    if pending.status is ReferralStatus.WITHDRAWN:
        return record.status is ReferralStatus.WITHDRAWN
    return record.version >= pending.version


class ReferralReadModel:
    """The index, fed from the worker's state topic (its personal fields opened with the referral keys)."""

    def __init__(self, bootstrap_servers: str, sealer: Sealer, prefix: str = "") -> None:
        self.index = ReferralIndex()
        self.view: CompactedView[ReferralEntry] = CompactedView(
            bootstrap_servers,
            prefix + REFERRALS_STATE.name,
            sealer.parser(ReferralEntry),
            on_change=self._on_change,
            client_id="circles-referrals-api",
            sealer=sealer,
        )

    def _on_change(self, _: str, entry: ReferralEntry | None) -> None:
        if entry is not None and entry.record is not None:
            self.index.apply(entry.record)

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
