"""The coordinator worker: keeps what the page and the report read, from public events: each referral's
progress (``services.referral_progress``), the messages that could not be delivered, and the archive of
the facts the commissioner's return is computed from (``domain.history``)."""

from __future__ import annotations

from schemas.envelope import Envelope, Event
from schemas.events.notifications import NotificationDeadLettered
from schemas.topics import (
    CIRCLES_EVENTS,
    COORDINATOR_DEAD_LETTERS,
    COORDINATOR_HISTORY,
    COORDINATOR_REFERRALS,
    MATCHING_EVENTS,
    NOTIFICATION_EVENTS,
    REFERRAL_EVENTS,
)
from services.coordinator.domain.facts import DeadLetterFact, dead_letter
from services.coordinator.domain.history import ArchivedEvent, archived
from services.coordinator.settings import CoordinatorSettings
from services.referral_progress.progress import ReferralProgress, apply
from services.runtime.worker import StreamWorker, UnitOfWork

SERVICE = "coordinator"


class CoordinatorWorker:
    def __init__(self, settings: CoordinatorSettings) -> None:
        self.worker = StreamWorker(SERVICE, settings)
        self.referrals = self.worker.table("referrals", ReferralProgress, COORDINATOR_REFERRALS)
        self.dead_letters = self.worker.table("dead-letters", DeadLetterFact, COORDINATOR_DEAD_LETTERS)
        self.history = self.worker.table("history", ArchivedEvent, COORDINATOR_HISTORY)
        self.worker.route(REFERRAL_EVENTS, self.on_referral_event)
        self.worker.route(MATCHING_EVENTS, self.on_referral_event)
        self.worker.route(NOTIFICATION_EVENTS, self.on_notification_event)
        self.worker.route(CIRCLES_EVENTS, self.on_circle_event)

    async def on_circle_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """Circle facts (ids, dates, states) only go to the archive the return is computed from."""
        uow.put(self.history, str(envelope.id), archived(str(envelope.id), event, envelope.time))

    async def on_referral_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        referral_id = getattr(event, "referral_id", None)
        if referral_id is None:
            return  # volunteer reminders
        key = str(referral_id)
        uow.put(self.history, str(envelope.id), archived(str(envelope.id), event, envelope.time))
        current = uow.get(self.referrals, key)
        progress = apply(current, event, envelope.time)
        if progress is not None and progress != current:
            uow.put(self.referrals, key, progress)

    async def on_notification_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if isinstance(event, NotificationDeadLettered):
            uow.put(self.dead_letters, str(event.notification_id), dead_letter(event))
