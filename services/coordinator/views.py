"""The coordinator service's own projection, as the web process reads it (kept current from its tables'
changelog topics)."""

from __future__ import annotations

import asyncio

from schemas.topics import COORDINATOR_CIRCLES, COORDINATOR_DEAD_LETTERS, COORDINATOR_REFERRALS
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.facts import DeadLetterFact
from services.referral_progress.progress import ReferralProgress
from services.runtime.kafka import CompactedView


class CircleViews:
    """The circles alone (the volunteers' page reads only these)."""

    def __init__(
        self, bootstrap_servers: str, prefix: str = "", client_id: str = "circles-coordinator-web"
    ) -> None:
        self.view: CompactedView[CircleView] = CompactedView(
            bootstrap_servers,
            prefix + COORDINATOR_CIRCLES.name,
            CircleView.model_validate_json,
            client_id=client_id,
        )

    def circles(self) -> list[CircleView]:
        return list(self.view.values())

    def circle(self, circle_id: str) -> CircleView | None:
        return self.view.get(circle_id.removeprefix("circle-"))

    async def start(self) -> None:
        await self.view.start()
        async with asyncio.timeout(120):
            await self.view.sync()

    async def stop(self) -> None:
        await self.view.stop()


class CoordinatorViews:
    def __init__(self, bootstrap_servers: str, prefix: str = "") -> None:
        self.circle_views = CircleViews(bootstrap_servers, prefix)
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

    def circles(self) -> list[CircleView]:
        return self.circle_views.circles()

    def circle(self, circle_id: str) -> CircleView | None:
        return self.circle_views.circle(circle_id)

    async def start(self) -> None:
        await self.progress.start()
        await self.dead.start()
        await self.circle_views.start()
        async with asyncio.timeout(120):
            await self.progress.sync()
            await self.dead.sync()

    async def stop(self) -> None:
        await self.circle_views.stop()
        await self.dead.stop()
        await self.progress.stop()
