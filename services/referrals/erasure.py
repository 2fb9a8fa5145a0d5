"""Erasure on request (``circles erase referral``) and under the retention policy (``circles retention
apply``).

The referrals worker is the single writer of referral state, so these commands only ask it. They read the
current state once (for a clear refusal of an unknown id, and for what the retention policy finds due),
send one ``EraseReferral`` per referral and wait for the worker's answer: its ``ReferralErased`` event, or
its refusal (a dead letter). The worker writes the record without personal data, destroys the data keys
and publishes the events; the erasure becomes an entry in the referral's history, its audit trail.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from schemas.events.referrals import EraseReferral, ErasureReason, ReferralErased
from schemas.topics import REFERRAL_EVENTS, REFERRALS_COMMANDS, REFERRALS_STATE
from services.protection.sealer import build_sealer
from services.referrals.access import Access, AccessLog
from services.referrals.domain.referral import ReferralEntry, ReferralRecord
from services.referrals.settings import ReferralsSettings
from services.runtime.clock import clock_from_setting
from services.runtime.kafka import OutcomeWatcher, Publisher, read_compacted

WAIT_SECONDS = 30.0
SOURCE = "/circles/referrals/cli"


@dataclass(frozen=True)
class Result:
    """What became of one erasure request: ``erased``, ``refused`` (with the worker's reason) or
    ``unconfirmed`` (sent, but the worker did not answer in time; it will apply it when it runs)."""

    referral_id: uuid.UUID
    outcome: str
    detail: str = ""


class ErasureDesk:
    """One command's view of the referrals (read once, with the referral keys) and its line to the worker."""

    def __init__(self, settings: ReferralsSettings, actor: str, records: list[ReferralRecord]) -> None:
        self.settings = settings
        self.actor = actor
        self.clock = clock_from_setting(settings.clock)
        self._records = {record.referral_id: record for record in records}

    @classmethod
    async def load(cls, settings: ReferralsSettings, actor: str) -> ErasureDesk:
        """The desk with the referrals as the worker's state topic has them now. The data keys are needed
        only to read that state: erasure requests carry no personal data. The referral keys are the
        referrals service's alone, so on a broker with ACLs these commands sign in as its principal."""
        sealer = build_sealer(settings, ["referral"], client_id="circles-referrals-erasure-keys")
        await sealer.start()
        try:
            entries = await read_compacted(
                settings.bootstrap_servers(),
                settings.topic_prefix + REFERRALS_STATE.name,
                sealer.parser(ReferralEntry),
                sealer=sealer,
            )
        finally:
            await sealer.stop()
        return cls(settings, actor, [e.record for e in entries.values() if e.record is not None])

    def now(self) -> datetime:
        return self.clock.now()

    def find(self, referral_id: uuid.UUID) -> ReferralRecord | None:
        return self._records.get(referral_id)

    def records(self) -> list[ReferralRecord]:
        return list(self._records.values())

    async def erase(
        self,
        records: list[ReferralRecord],
        reason: ErasureReason,
        note: str | None = None,
        seconds: float = WAIT_SECONDS,
    ) -> list[Result]:
        """Ask the worker to erase each referral and wait (``seconds`` in all) for its answers. The access
        log records the request (acknowledged) before any erasure is asked for."""
        if not records:
            return []
        bootstrap, prefix = self.settings.bootstrap_servers(), self.settings.topic_prefix
        watcher = OutcomeWatcher(
            bootstrap,
            [prefix + REFERRAL_EVENTS.name, prefix + REFERRALS_COMMANDS.dlq],
            client_id="circles-cli-erasure",
            types={ReferralErased.event_type},
        )
        await watcher.start()
        correlation_id = f"{reason}-{uuid.uuid4()}"
        try:
            async with Publisher(bootstrap, SOURCE, prefix=prefix) as publisher:
                access = Access("erase", [record.referral_id for record in records])
                await AccessLog(publisher).record(self.actor, access, correlation_id, self.now())
                sent, acks = [], []
                for record in records:
                    command = EraseReferral(
                        referral_id=record.referral_id,
                        reason=reason,
                        requested_by=self.actor,
                        requested_at=self.now(),
                        note=note,
                    )
                    envelope = publisher.envelope(command, correlation_id)
                    acks.append(await publisher.send(command, envelope))
                    sent.append((record.referral_id, str(envelope.id)))
                await asyncio.gather(*acks)
            deadline = asyncio.get_running_loop().time() + seconds
            results = []
            for referral_id, command_id in sent:
                left = max(0.1, deadline - asyncio.get_running_loop().time())
                outcome = await watcher.wait(command_id, left)
                if outcome is None:
                    results.append(Result(referral_id, "unconfirmed"))
                elif outcome.refused:
                    results.append(Result(referral_id, "refused", outcome.error))
                else:
                    results.append(Result(referral_id, "erased"))
            return results
        finally:
            await watcher.stop()
