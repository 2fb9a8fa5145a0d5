"""What the partner API answers about circles from: the referrals worker's table of its referrals' circles.

Like ``readmodel`` (referral records), the table's changelog (``circles.referrals.circles.v1``, compacted,
the worker its single writer) is read whole into an index; each concern's summary is opened with the
referral's key (a referral erased since: the entry is gone). Acknowledgements this API process has just
written, and the circles service has not confirmed yet, are laid over the facts so that a GET straight
after the POST says ``acknowledged``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from schemas.topics import REFERRALS_CIRCLES
from services.protection.sealer import Sealer
from services.referrals.domain.circles import CircleEntry, ConcernEntry
from services.runtime.kafka import CompactedView


class CircleIndex:
    """Circles by referral, concerns by id, both per agency; with this process's acknowledgements."""

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, CircleEntry] = {}
        self._by_concern: dict[uuid.UUID, uuid.UUID] = {}
        self._by_agency: dict[str, set[uuid.UUID]] = {}
        self._acknowledged: dict[uuid.UUID, datetime] = {}

    def apply(self, key: str, entry: CircleEntry | None) -> None:
        referral_id = uuid.UUID(key)
        old = self._entries.pop(referral_id, None)
        if old is not None:
            for concern in old.concerns:
                self._by_concern.pop(concern.concern_id, None)
            if old.agency_id is not None:
                self._by_agency.get(old.agency_id, set()).discard(referral_id)
        if entry is None:
            return
        self._entries[referral_id] = entry
        for concern in entry.concerns:
            self._by_concern[concern.concern_id] = referral_id
            if concern.acknowledged_at is not None:
                self._acknowledged.pop(concern.concern_id, None)
        if entry.agency_id is not None:
            self._by_agency.setdefault(entry.agency_id, set()).add(referral_id)

    def circle_of(self, referral_id: uuid.UUID, agency_id: str) -> CircleEntry | None:
        """Another agency's circle is indistinguishable from none."""
        entry = self._entries.get(referral_id)
        return entry if entry is not None and entry.formed and entry.agency_id == agency_id else None

    def concern_of(self, concern_id: uuid.UUID, agency_id: str) -> tuple[CircleEntry, ConcernEntry] | None:
        """Another agency's concern (or one not raised yet) is indistinguishable from an unknown one."""
        referral_id = self._by_concern.get(concern_id)
        entry = self.circle_of(referral_id, agency_id) if referral_id is not None else None
        concern = entry.concern(concern_id) if entry is not None else None
        return (entry, concern) if entry is not None and concern is not None and concern.raised else None

    def concerns_of(self, agency_id: str) -> list[tuple[CircleEntry, ConcernEntry]]:
        found: list[tuple[CircleEntry, ConcernEntry]] = []
        for referral_id in self._by_agency.get(agency_id, set()):
            entry = self.circle_of(referral_id, agency_id)
            if entry is not None:
                found.extend((entry, concern) for concern in entry.raised_concerns())
        return found

    def acknowledge(self, concern_id: uuid.UUID, at: datetime) -> None:
        self._acknowledged.setdefault(concern_id, at)

    def acknowledged_at(self, concern_id: uuid.UUID) -> datetime | None:
        """When this process acknowledged the concern, while the facts have not caught up."""
        return self._acknowledged.get(concern_id)

    def acknowledged_here(self) -> set[uuid.UUID]:
        return set(self._acknowledged)

    def __len__(self) -> int:
        return len(self._entries)


class CirclesReadModel:
    """The index, fed from the worker's circles table (summaries opened with the referral keys)."""

    def __init__(self, bootstrap_servers: str, sealer: Sealer, prefix: str = "") -> None:
        self.index = CircleIndex()
        self.view: CompactedView[CircleEntry] = CompactedView(
            bootstrap_servers,
            prefix + REFERRALS_CIRCLES.name,
            sealer.parser(CircleEntry),
            on_change=self.index.apply,
            client_id="circles-referrals-api-circles",
            sealer=sealer,
        )

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
