"""The circles worker: the single writer of circle state after formation.

Routes (thin adapters around ``domain.circle``): matching's ``CircleFormed`` activates a circle; the
commands (CLI, pages, partner API) change it, once per command id; ``ReferralErased`` drops its minutes and
summaries. A timer finds, through an index of each circle's next deadline (no scan of the table), minutes
gone overdue and urgent concerns to escalate. Every "now" is the service's ``Clock`` (``CIRCLES_CLOCK``).

The table (``circles.circles.state.v1``) is keyed by referral id; minutes and summaries in it are sealed with
the referral's data key, so when the referrals service erases the referral (destroying that key) before this
worker hears of it, what it holds of them is already unreadable: those values are read without opening.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from schemas.envelope import Envelope, Event
from schemas.events.circles import CircleCommand
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralErased
from schemas.topics import CIRCLES_COMMANDS, CIRCLES_EVENTS, CIRCLES_STATE, MATCHING_EVENTS, REFERRAL_EVENTS
from services.circles.domain.circle import (
    Change,
    Circle,
    CircleRefused,
    DeadlineView,
    activate,
    apply_command,
    erase,
    fall_due,
    without_personal,
)
from services.circles.settings import CirclesSettings
from services.protection.sealer import build_sealer
from services.runtime.clock import clock_from_setting
from services.runtime.codec import Erased
from services.runtime.deadletter import ProcessingError
from services.runtime.logs import get_logger
from services.runtime.worker import StreamWorker, UnitOfWork

log = get_logger(__name__)
SERVICE = "circles"
DEADLINE_INDEX = "next_deadline"
DEADLINE_BATCH = 1_000
"""Circles looked at in one run of the timer (the rest in the next): a short unit of work."""


def deadline_text(moment: datetime) -> str:
    """Sortable text of a moment (UTC, fixed width) for the deadline index."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _deadline_of(view: DeadlineView) -> str | None:
    return deadline_text(view.next_deadline) if view.next_deadline is not None else None


class CirclesWorker:
    def __init__(self, settings: CirclesSettings) -> None:
        self.settings = settings
        self.periods = settings.periods
        self.clock = clock_from_setting(settings.clock)
        self.events_topic = settings.topic_prefix + CIRCLES_EVENTS.name
        self.sealer = build_sealer(settings, ["referral"], client_id="circles-circles-keys")
        self.worker = StreamWorker(SERVICE, settings, self.sealer)
        self.table = self.worker.table("circles", Circle, CIRCLES_STATE, subject="referral")
        self.table.index(DEADLINE_INDEX, _deadline_of, DeadlineView)
        self.worker.route(CIRCLES_COMMANDS, self.on_command)
        self.worker.route(MATCHING_EVENTS, self.on_matching_event)
        self.worker.route(REFERRAL_EVENTS, self.on_referral_event)
        self.worker.timer(settings.deadline_check_interval_s, self.check_deadlines)

    # -- reading ---------------------------------------------------------------------------------------------

    def _get(self, uow: UnitOfWork, key: str, *, mark_erased: bool = True) -> Circle | None:
        """The circle; for one whose referral's key was destroyed, what is left of it without minutes and
        summaries (``mark_erased``: marked erased, so that nothing applies to it any more)."""
        try:
            found: Circle | None = uow.get(self.table, key)
            return found
        except Erased:
            raw = self.table.store.get(self.table.partition(key), key)
            if raw is None:
                return None
            stripped = without_personal(json.loads(raw))
            return erase(stripped, self.clock.now()).circle if mark_erased else stripped

    async def _key_alive(self, circle: Circle) -> bool:
        """Whether the referral's data key still exists (else sealing would make a new one for an erased
        referral): the keys topic is read again when this process has not seen the key."""
        subject = f"referral:{circle.referral_id}"
        store = self.sealer.store_for(subject)
        if store.current(subject) is None:
            await store.sync()
        return store.current(subject) is not None

    # -- handlers --------------------------------------------------------------------------------------------

    async def on_matching_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, CircleFormed):
            return
        key = str(event.referral_id)
        change = activate(self._get(uow, key), event, envelope.id, self.periods, envelope.correlationid)
        await self._apply(uow, key, change, envelope.correlationid, envelope)

    async def on_command(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, CircleCommand)
        key = str(event.referral_id)
        try:
            change = apply_command(self._get(uow, key), event, self.clock.now(), self.periods)
        except CircleRefused as refused:
            raise ProcessingError(f"{type(refused).__name__}: {refused}") from None
        circle = change.circle
        if circle is not None and circle.erased_at is None and not await self._key_alive(circle):
            raise ProcessingError(f"CircleRefused: circle {circle.circle_id} was erased with its referral")
        await self._apply(uow, key, change, envelope.correlationid, envelope)

    async def on_referral_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """An erased referral: its circle keeps ids, dates and states only (the key is destroyed already)."""
        if not isinstance(event, ReferralErased):
            return
        key = str(event.referral_id)
        change = erase(self._get(uow, key, mark_erased=False), event.erased_at)
        if change.circle is not None:
            log.info("circle_erased", referral_id=key)
        await self._apply(uow, key, change, envelope.correlationid, envelope)

    async def check_deadlines(self, uow: UnitOfWork) -> None:
        """Timer: minutes overdue and urgent concerns to escalate, found through the deadline index."""
        now = self.clock.now()
        keys = list(
            itertools.islice(self.table.indexed(DEADLINE_INDEX, upto=deadline_text(now)), DEADLINE_BATCH)
        )
        told = 0
        for key in keys:
            circle = self._get(uow, key)
            if circle is None or circle.erased_at is not None:
                continue
            change = fall_due(circle, now)
            if change.circle is None:
                continue
            if not await self._key_alive(circle):
                continue  # erased meanwhile: its ReferralErased is on its way
            told += len(change.facts)
            await self._apply(uow, key, change, circle.correlation_id or f"circle-{key}", None)
        if told:
            log.info("circle_deadlines_passed", facts=told)

    async def _apply(
        self, uow: UnitOfWork, key: str, change: Change, correlation_id: str, cause: Envelope | None
    ) -> None:
        for event_id, fact in change.facts:
            uow.emit(fact, self.events_topic, event_id=event_id, correlation_id=correlation_id, cause=cause)
        if change.circle is not None:
            uow.put(self.table, key, change.circle)
