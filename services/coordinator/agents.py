"""The coordinator worker: keeps the facts the page and the report read, from public events."""

from __future__ import annotations

from schemas.envelope import Envelope, Event
from schemas.events.notifications import NotificationDeadLettered
from schemas.topics import (
    COORDINATOR_DEAD_LETTERS,
    COORDINATOR_REFERRALS,
    MATCHING_EVENTS,
    NOTIFICATION_EVENTS,
    REFERRAL_EVENTS,
)
from services.coordinator.domain.facts import DeadLetterFact, ReferralFacts, dead_letter, follow
from services.coordinator.settings import CoordinatorSettings
from services.runtime.worker import StreamWorker, UnitOfWork

SERVICE = "coordinator"


class CoordinatorWorker:
    def __init__(self, settings: CoordinatorSettings) -> None:
        self.worker = StreamWorker(SERVICE, settings)
        self.referrals = self.worker.table("referrals", ReferralFacts, COORDINATOR_REFERRALS)
        self.dead_letters = self.worker.table("dead-letters", DeadLetterFact, COORDINATOR_DEAD_LETTERS)
        self.worker.route(REFERRAL_EVENTS, self.on_referral_event)
        self.worker.route(MATCHING_EVENTS, self.on_referral_event)
        self.worker.route(NOTIFICATION_EVENTS, self.on_notification_event)

    async def on_referral_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        referral_id = getattr(event, "referral_id", None)
        if referral_id is None:
            return  # volunteer reminders
        key = str(referral_id)
        facts = follow(uow.get(self.referrals, key), event, envelope.id, envelope.time)
        if facts is not None:
            uow.put(self.referrals, key, facts)

    async def on_notification_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if isinstance(event, NotificationDeadLettered):
            uow.put(self.dead_letters, str(event.notification_id), dead_letter(event))
