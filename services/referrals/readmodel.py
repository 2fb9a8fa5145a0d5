"""What the partner API answers from.

Referral records come from the worker's state topic (compacted; the worker is their single writer).
Submissions this API process has just accepted, and the worker has not applied yet, are held as
``Pending`` so that a GET straight after a POST finds the referral ("received") instead of a 404. A
pending version goes when the worker's record catches up with it, or when the worker refuses its command
(a dead letter on the commands' dead-letter topic carrying the command's id: an amendment of a referral
withdrawn or erased meanwhile through another channel), so the API shows the worker's record again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.common import ReferralStatus
from schemas.partner_api import Decision, HistoryEntry
from schemas.topics import REFERRALS_COMMANDS, REFERRALS_STATE
from services.protection.sealer import Sealer
from services.referrals.domain.referral import ReferralEntry, ReferralRecord
from services.runtime.kafka import CompactedView, TopicTail
from services.runtime.logs import get_logger

log = get_logger(__name__)


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
    command_id: str | None = None
    """The id (``ce_id``) of the command that made this version: its dead letter clears it."""


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

    def refused(self, referral_id: uuid.UUID, command_id: str) -> bool:
        """The worker refused the command ``command_id``: the version it would have made is not pending."""
        pending = self._pending.get(referral_id)
        if pending is None or pending.command_id != command_id:
            return False
        del self._pending[referral_id]
        if referral_id not in self._records:  # a refused first submission leaves nothing to show
            self._by_agency.get(pending.agency_id, set()).discard(referral_id)
        return True

    def pending(self) -> int:
        return len(self._pending)

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


class RefusalReader(TopicTail):
    """Follows the commands' dead-letter topic from its end: each command the worker refused clears the
    version it left pending in ``index`` (only this process's commands are pending here)."""

    def __init__(self, bootstrap_servers: str, index: ReferralIndex, prefix: str = "") -> None:
        topic = prefix + REFERRALS_COMMANDS.dlq
        super().__init__(bootstrap_servers, [topic], "circles-referrals-api-refusals", f"refusals:{topic}")
        self.index = index

    def on_record(self, topic: str, record: Any) -> None:
        refusal_of(self.index, record.key, record.headers)


def refusal_of(index: ReferralIndex, key: bytes | None, headers: Any) -> bool:
    """Apply one dead letter of a command (its key is the referral id, ``ce_id`` the command's id)."""
    command_id = next(
        (bytes(value).decode() for name, value in headers or () if name == "ce_id" and value), None
    )
    if key is None or command_id is None:
        return False
    try:
        referral_id = uuid.UUID(key.decode())
    except ValueError:
        return False
    cleared = index.refused(referral_id, command_id)
    if cleared:
        log.info("pending_version_refused", referral_id=str(referral_id))
    return cleared
