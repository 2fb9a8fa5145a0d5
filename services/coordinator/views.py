"""The coordinator service's own projection, as the web process reads it (kept current from its tables'
changelog topics)."""

from __future__ import annotations

import asyncio

from schemas.envelope import Event
from schemas.events.coordinator import SchemeRecord
from schemas.topics import COORDINATOR_DEAD_LETTERS, COORDINATOR_HISTORY, COORDINATOR_REFERRALS
from services.coordinator.domain.facts import DeadLetterFact
from services.coordinator.domain.history import ArchivedEvent, unarchived
from services.coordinator.records import records_view
from services.referral_progress.progress import ReferralProgress
from services.runtime.kafka import CompactedView


class CoordinatorViews:
    def __init__(self, bootstrap_servers: str, prefix: str = "") -> None:
        self.progress: CompactedView[ReferralProgress] = CompactedView(
            bootstrap_servers,
            prefix + COORDINATOR_REFERRALS.name,
            ReferralProgress.model_validate_json,
            client_id="circles-coordinator-web",
        )
        self.dead: CompactedView[DeadLetterFact] = CompactedView(
            bootstrap_servers,
            prefix + COORDINATOR_DEAD_LETTERS.name,
            DeadLetterFact.model_validate_json,
            client_id="circles-coordinator-web",
        )

        self.archive: CompactedView[ArchivedEvent] = CompactedView(
            bootstrap_servers,
            prefix + COORDINATOR_HISTORY.name,
            ArchivedEvent.model_validate_json,
            client_id="circles-coordinator-web",
        )
        self.records: CompactedView[SchemeRecord] = records_view(
            bootstrap_servers, prefix, "circles-coordinator-web"
        )

    def scheme_events(self) -> list[Event]:
        """The history the commissioner's return is computed from: the archive and the scheme's records."""
        return [*unarchived(list(self.archive.values())), *self.records.values()]

    def referrals(self) -> list[ReferralProgress]:
        return list(self.progress.values())

    def dead_letters(self) -> list[DeadLetterFact]:
        return list(self.dead.values())

    async def start(self) -> None:
        await self.progress.start()
        await self.dead.start()
        await self.archive.start()
        await self.records.start()
        async with asyncio.timeout(120):
            await self.progress.sync()
            await self.dead.sync()
            await self.archive.sync()
            await self.records.sync()

    async def stop(self) -> None:
        await self.records.stop()
        await self.archive.stop()
        await self.dead.stop()
        await self.progress.stop()
