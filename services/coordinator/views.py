"""The coordinator service's own projection, as the web process reads it (kept current from its tables'
changelog topics)."""

from __future__ import annotations

import asyncio

from schemas.topics import COORDINATOR_DEAD_LETTERS, COORDINATOR_REFERRALS
from services.coordinator.domain.facts import DeadLetterFact
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

    def referrals(self) -> list[ReferralProgress]:
        return list(self.progress.values())

    def dead_letters(self) -> list[DeadLetterFact]:
        return list(self.dead.values())

    async def start(self) -> None:
        await self.progress.start()
        await self.dead.start()
        async with asyncio.timeout(120):
            await self.progress.sync()
            await self.dead.sync()

    async def stop(self) -> None:
        await self.dead.stop()
        await self.progress.stop()
