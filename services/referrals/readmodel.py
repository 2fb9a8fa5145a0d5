"""What the partner API answers from.

Referral records come from the worker's state topic (compacted; the worker is their single writer),
kept on disk in the API process's state directory (``StoredView``: a start reads only what the worker
wrote since the copy's checkpoint) with an index by agency; a record is opened and parsed when a request
looks it up, and the most recently used are kept parsed (``CACHE_SIZE``). Submissions this API process has
just accepted, and the worker has not applied yet, are held as ``Pending`` so that a GET straight after a
POST finds the referral ("received") instead of a 404. A pending version goes when the worker's record
catches up with it, or when the worker refuses its command (a dead letter on the commands' dead-letter
topic carrying the command's id: an amendment of a referral withdrawn or erased meanwhile through another
channel), so the API shows the worker's record again.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.common import ReferralStatus
from schemas.partner_api import Decision, HistoryEntry
from schemas.topics import REFERRALS_COMMANDS, REFERRALS_STATE
from services.protection.sealer import Sealer
from services.referrals.domain.referral import ReferralEntry, ReferralRecord
from services.runtime.codec import Erased
from services.runtime.kafka import TopicTail
from services.runtime.logs import get_logger
from services.runtime.views import StoredView

log = get_logger(__name__)
CACHE_SIZE = 20_000
"""Referral records kept parsed in memory (the most recently looked up)."""


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


class StoredReferralIndex(ReferralIndex):
    """The index over a ``StoredView`` of the worker's state topic (indexed by agency), with this process's
    pending submissions laid over it. A record is parsed (its sealed fields opened) when looked up; one whose
    data key was destroyed is not found, as an erased subject's old record is not."""

    def __init__(self, view: StoredView, parse: Callable[[bytes], ReferralEntry]) -> None:
        super().__init__()
        self._view = view
        self._parse = parse
        self._cache: OrderedDict[uuid.UUID, ReferralRecord | None] = OrderedDict()

    def changed(self, key: str, raw: bytes | None) -> None:
        """A state record the view has just stored: the cached copy is stale, a pending one may be done."""
        try:
            referral_id = uuid.UUID(key)
        except ValueError:
            return
        self._cache.pop(referral_id, None)
        pending = self._pending.get(referral_id)
        if pending is not None and raw is not None:
            record = self._stored(referral_id)
            if record is not None and _caught_up(record, pending):
                del self._pending[referral_id]

    def _stored(self, referral_id: uuid.UUID) -> ReferralRecord | None:
        if referral_id in self._cache:
            self._cache.move_to_end(referral_id)
            return self._cache[referral_id]
        raw = self._view.get(str(referral_id))
        record = self._record(raw) if raw is not None else None
        self._cache[referral_id] = record
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return record

    def _record(self, raw: bytes) -> ReferralRecord | None:
        try:
            return self._parse(raw).record
        except Erased:  # its data key was destroyed: what was sealed is gone for good
            return None
        except Exception as error:  # a bad record must not fail requests; it is logged (no content)
            log.warning("referral_record_unreadable", error=type(error).__name__)
            return None

    def apply(self, record: ReferralRecord) -> None:
        raise TypeError("a stored index is fed by its view")

    def get(self, referral_id: uuid.UUID) -> Referral | None:
        return self._pending.get(referral_id) or self._stored(referral_id)

    def of_agency(self, agency_id: str) -> list[Referral]:
        ids = {uuid.UUID(key) for _, key in self._view.indexed("agency", equal=agency_id)}
        ids |= self._by_agency.get(agency_id, set())
        found = (self.get(referral_id) for referral_id in ids)
        return [referral for referral in found if referral is not None and referral.agency_id == agency_id]

    def __len__(self) -> int:
        return len(self._view) + sum(1 for key in self._pending if self._view.get(str(key)) is None)


def _agency_of(raw: bytes) -> str | None:
    """The agency of a state record (the index of an agency's referrals), read without opening it."""
    record = json.loads(raw).get("record")
    return str(record["agency_id"]) if record else None


class ReferralReadModel:
    """The index, fed from the worker's state topic (its personal fields opened with the referral keys)."""

    def __init__(
        self, bootstrap_servers: str, sealer: Sealer, prefix: str = "", directory: Path | None = None
    ) -> None:
        """``directory``: where the copy of the state topic lives (None: a temporary one)."""
        self.view = StoredView(
            bootstrap_servers,
            prefix + REFERRALS_STATE.name,
            REFERRALS_STATE.partitions,
            directory=directory,
            client_id="circles-referrals-api",
            indexes={"agency": _agency_of},
            prepare=sealer.prepare,
            on_change=self._changed,
        )
        self.index = StoredReferralIndex(self.view, sealer.parser(ReferralEntry))

    def _changed(self, key: str, raw: bytes | None) -> None:
        self.index.changed(key, raw)

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
