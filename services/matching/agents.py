"""The matching worker.

Forwarders copy the matcher's inputs (eligibility decisions and withdrawals, volunteer records, the
coordinator's decisions) into one single-partition inbox, keeping each event's envelope; the worker that
holds the inbox applies them, one at a time and in order, to the whole pool and every case
(``domain.workflow.Matching``), then persists what changed and publishes the events.
"""

from __future__ import annotations

from schemas.envelope import Envelope, Event
from schemas.events.circles import CircleEnded
from schemas.events.matching import MatchDecided
from schemas.events.referrals import ReferralAssessed, ReferralErased, ReferralWithdrawn
from schemas.events.volunteers import ChangeVolunteer, VolunteerEvent, VolunteerRecord
from schemas.topics import (
    CIRCLES_EVENTS,
    MATCH_DECISIONS,
    MATCHING_CASES,
    MATCHING_EVENTS,
    MATCHING_INBOX,
    MATCHING_POOL,
    REFERRAL_EVENTS,
    VOLUNTEER_COMMANDS,
    VOLUNTEER_RECORDS,
    VOLUNTEERS,
)
from services.matching.domain.cases import Case
from services.matching.domain.policy import load_policy
from services.matching.domain.records import VolunteerRefused, VolunteerState, apply_change
from services.matching.domain.workflow import DecisionRefused, Matching, scheme_day
from services.matching.settings import MatchingSettings
from services.protection.sealer import build_sealer
from services.runtime.clock import clock_from_setting
from services.runtime.deadletter import ProcessingError
from services.runtime.ids import derive_id
from services.runtime.logs import get_logger
from services.runtime.worker import StreamWorker, UnitOfWork

log = get_logger(__name__)
SERVICE = "matching"


class MatchingWorker:
    def __init__(self, settings: MatchingSettings) -> None:
        self.settings = settings
        self.policy = load_policy(settings.matching_policy)
        self.clock = clock_from_setting(settings.clock)
        prefix = settings.topic_prefix
        self.inbox_topic = prefix + MATCHING_INBOX.name
        self.events_topic = prefix + MATCHING_EVENTS.name
        self.volunteers_topic = prefix + VOLUNTEERS.name
        self.sealer = build_sealer(
            settings,
            ["volunteer", "decision"],
            client_id="circles-matching-keys",
            directory=settings.state_dir("matching-worker"),
        )
        self.worker = StreamWorker(SERVICE, settings, self.sealer)
        self.cases = self.worker.table("cases", Case, MATCHING_CASES, subject="decision")
        self.pool = self.worker.table("pool", VolunteerRecord, MATCHING_POOL, subject="volunteer")
        self.records = self.worker.table("records", VolunteerState, VOLUNTEER_RECORDS, subject="volunteer")
        self.matching = Matching(self.policy)
        self.reminded: set[str] = set()
        self.worker.route(VOLUNTEER_COMMANDS, self.on_volunteer_command)
        self.worker.route(REFERRAL_EVENTS, self.forward_referral_event)
        self.worker.route(VOLUNTEERS, self.forward)
        self.worker.route(MATCH_DECISIONS, self.forward)
        self.worker.route(CIRCLES_EVENTS, self.forward_circle_event)
        self.worker.route(MATCHING_INBOX, self.on_inbox)
        self.worker.on_assigned(self.rebuild)
        self.worker.timer(settings.reminder_interval_s, self.raise_reminders)

    async def rebuild(self) -> None:
        """The pool and cases are recovered: derive holds, circles and the waiting queue from them."""
        self.matching = Matching(self.policy, self.pool.values(), self.cases.values())
        if self.pool.held:
            log.info(
                "matching_state_rebuilt", volunteers=len(self.matching.pool), cases=len(self.matching.cases)
            )

    async def on_volunteer_command(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """Apply a coordinator's change to one volunteer record; publish the whole record after it."""
        assert isinstance(event, ChangeVolunteer)
        state: VolunteerState | None = uow.get(self.records, event.volunteer_id)
        if state is not None and envelope.id in state.applied:
            return  # applied before a crash; its event is already out
        try:
            changed = apply_change(state.record if state else None, event, scheme_day(self.clock.now()))
        except VolunteerRefused as refused:
            raise ProcessingError(str(refused)) from None
        applied = [*(state.applied if state else []), envelope.id][-32:]
        uow.put(self.records, event.volunteer_id, VolunteerState(record=changed.volunteer, applied=applied))
        uow.emit(
            changed,
            self.volunteers_topic,
            event_id=derive_id(envelope.id, "applied"),
            correlation_id=envelope.correlationid,
            cause=envelope,
        )

    async def forward(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        uow.forward(event, envelope, self.inbox_topic)

    async def forward_referral_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if isinstance(event, ReferralAssessed | ReferralWithdrawn | ReferralErased):
            await self.forward(uow, envelope, event)

    async def forward_circle_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """A circle that ended frees its volunteers: the matcher learns it in inbox order."""
        if isinstance(event, CircleEnded):
            await self.forward(uow, envelope, event)

    async def on_inbox(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if isinstance(event, ReferralErased):
            await self.on_erased(uow, event)
            return
        matching = self.matching
        matching.begin()
        try:
            if isinstance(event, ReferralAssessed):
                emitted = matching.on_assessed(event, envelope.id, envelope.time, envelope.correlationid)
            elif isinstance(event, ReferralWithdrawn):
                emitted = matching.on_withdrawn(event, envelope.id, envelope.time)
            elif isinstance(event, MatchDecided):
                emitted = matching.on_decided(event, envelope.id, envelope.time)
            elif isinstance(event, VolunteerEvent):
                emitted = matching.on_volunteer(event.volunteer, envelope.id, envelope.time)
            elif isinstance(event, CircleEnded):
                emitted = matching.on_circle_ended(event, envelope.id, envelope.time)
            else:
                raise ProcessingError(f"{event.event_type} does not belong in the matching inbox")
        except DecisionRefused as refused:
            matching.rollback()
            raise ProcessingError(str(refused)) from None
        except Exception:
            matching.rollback()
            raise
        cases, volunteers = matching.changed()
        for case in cases:
            uow.put(self.cases, str(case.referral_id), case)
        for record in volunteers:
            uow.put(self.pool, record.volunteer_id, record)
        for event_id, output in emitted:
            referral_id = getattr(output, "referral_id", None)
            owner = matching.cases.get(referral_id) if referral_id else None
            correlation = owner.correlation_id if owner and owner.correlation_id else envelope.correlationid
            uow.emit(output, self.events_topic, event_id=event_id, correlation_id=correlation, cause=envelope)

    async def on_erased(self, uow: UnitOfWork, event: ReferralErased) -> None:
        """The case without the coordinator's notes is written (and acknowledged) first, then the keys that
        sealed them are destroyed: a crash in between repeats the rest, and no case is left unreadable."""
        self.matching.begin()
        self.matching.on_erased(event)
        cases, _ = self.matching.changed()
        for case in cases:
            await uow.write_through(self.cases, str(case.referral_id), case)
        destroyed = await self.sealer.destroy(f"decision:{event.referral_id}")
        log.info("decision_notes_erased", referral_id=str(event.referral_id), data_keys=destroyed)

    async def raise_reminders(self, uow: UnitOfWork) -> None:
        """Timer: DBS checks about to lapse and supervision overdue, told to the coordinator (once each)."""
        if not self.pool.held:
            return  # another worker holds the pool
        today = scheme_day(self.clock.now())
        for event_id, reminder in self.matching.reminders(today):
            if str(event_id) in self.reminded:
                continue
            uow.emit(
                reminder,
                self.events_topic,
                event_id=event_id,
                correlation_id=f"reminder-{reminder.volunteer_id}",
            )
            self.reminded.add(str(event_id))
