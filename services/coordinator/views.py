"""The coordinator service's own projection, as the web process reads it (kept current from its tables'
changelog topics)."""

from __future__ import annotations

import asyncio

from schemas.envelope import Event
from schemas.events.coordinator import SchemeRecord
from schemas.topics import (
    COORDINATOR_CIRCLES,
    COORDINATOR_DEAD_LETTERS,
    COORDINATOR_HISTORY,
    COORDINATOR_REFERRALS,
)
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.facts import DeadLetterFact
from services.coordinator.domain.history import ArchivedEvent, unarchived
from services.coordinator.records import records_view
from services.referral_progress.progress import ReferralProgress
from services.runtime.kafka import CompactedView
from services.runtime.supervision import together


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

    def circles(self) -> list[CircleView]:
        return self.circle_views.circles()

    def circle(self, circle_id: str) -> CircleView | None:
        return self.circle_views.circle(circle_id)

    async def start(self) -> None:
        await together(
            self.progress.start(),
            self.dead.start(),
            self.archive.start(),
            self.records.start(),
            self.circle_views.start(),
        )
        async with asyncio.timeout(120):
            await together(self.progress.sync(), self.dead.sync(), self.archive.sync(), self.records.sync())

    async def stop(self) -> None:
        await self.records.stop()
        await self.archive.stop()
        await self.circle_views.stop()
        await self.dead.stop()
        await self.progress.stop()
