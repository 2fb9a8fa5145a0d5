"""The referrals worker: the single writer of referral state.

Agents (thin adapters around ``domain.referral``):
* commands (from the API, the inbound agent and the re-assessment timer) → record + referral events;
* inbound Kafka submissions → validated like a POST, then a command;
* matching events → the referral's status and history;
* a timer purges the inbound topic of the submissions already processed (``purge``).
"""

from __future__ import annotations

import itertools
from datetime import datetime

from schemas.envelope import Envelope, Event
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed, ProposalCancelled
from schemas.events.referrals import (
    EraseReferral,
    InboundSubmission,
    ReassessReferral,
    SubmitReferral,
    WithdrawReferral,
)
from schemas.partner_api import ReferralSubmission
from schemas.topics import (
    MATCHING_EVENTS,
    REFERRAL_EVENTS,
    REFERRALS_COMMANDS,
    REFERRALS_INBOUND,
    REFERRALS_STATE,
)
from services.protection.sealer import build_sealer
from services.referrals.agencies import AgencyDirectory
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import (
    Change,
    ReassessmentView,
    ReferralEntry,
    ReferralErasedError,
    ReferralWithdrawnError,
    SubmissionConflict,
    UnknownReferral,
    due_for_reassessment,
    erase,
    on_matching_event,
    reassess,
    reassessment_date,
    referral_id_for,
    scheme_today,
    submit,
    withdraw,
)
from services.referrals.purge import InboundPurger
from services.referrals.settings import ReferralsSettings
from services.runtime.clock import clock_from_setting
from services.runtime.deadletter import ProcessingError
from services.runtime.ids import derive_id
from services.runtime.logs import get_logger
from services.runtime.worker import StreamWorker, UnitOfWork

log = get_logger(__name__)
SERVICE = "referrals"
REASSESS_INDEX = "reassess_on"
REASSESS_BATCH = 2_000
"""Re-assessments asked for in one run of the timer (the rest in the next): a short unit of work."""
REFUSALS = (SubmissionConflict, UnknownReferral, ReferralWithdrawnError, ReferralErasedError)


class ReferralsWorker:
    def __init__(self, settings: ReferralsSettings) -> None:
        self.settings = settings
        self.policy = load_policy(settings.eligibility_policy)
        self.clock = clock_from_setting(settings.clock)
        prefix = settings.topic_prefix
        self.sealer = build_sealer(
            settings,
            ["referral", "inbound"],
            client_id="circles-referrals-keys",
            directory=settings.state_dir("referrals-worker"),
        )
        self.worker = StreamWorker(SERVICE, settings, self.sealer)
        self.table = self.worker.table("referrals", ReferralEntry, REFERRALS_STATE, subject="referral")
        self.table.index(REASSESS_INDEX, _reassess_text, ReassessmentView)
        self.commands_topic = prefix + REFERRALS_COMMANDS.name
        self.events_topic = prefix + REFERRAL_EVENTS.name
        self.agencies = AgencyDirectory(settings.bootstrap_servers(), prefix)
        self.worker.resource(self.agencies.start, self.agencies.stop)
        self.worker.route(REFERRALS_COMMANDS, self.on_command)
        self.worker.route(REFERRALS_INBOUND, self.on_inbound, seal_dead_letters="inbound")
        self.worker.route(MATCHING_EVENTS, self.on_matching_event)
        self.worker.timer(settings.reassess_interval_s, self.reassess_due)
        self.purger = InboundPurger(
            settings.bootstrap_servers(), self.worker.group_id, prefix + REFERRALS_INBOUND.name
        )
        self.worker.resource(self.purger.start, self.purger.stop)
        self.worker.timer(settings.inbound_purge_interval_s, self.purge_inbound)

    def detail_url(self, referral_id: object) -> str:
        return f"{self.settings.base_url()}/v1/referrals/{referral_id}"

    async def on_command(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, SubmitReferral | WithdrawReferral | ReassessReferral | EraseReferral)
        key = str(event.referral_id)
        entry = uow.get(self.table, key)
        now = self.clock.now()
        if isinstance(event, EraseReferral):
            await self.on_erase(uow, envelope, event, entry, now)
            return
        try:
            if isinstance(event, SubmitReferral):
                change = submit(entry, event, envelope.id, self.policy, now, self.detail_url(key))
            elif isinstance(event, WithdrawReferral):
                change = withdraw(entry, event, envelope.id, now)
            else:
                change = reassess(entry, event, envelope.id, self.policy, now)
        except REFUSALS as refusal:
            raise ProcessingError(f"{type(refusal).__name__}: {refusal}") from None
        self._apply(uow, key, change, envelope)

    async def on_erase(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        event: EraseReferral,
        entry: ReferralEntry | None,
        now: datetime,
    ) -> None:
        """The record without personal data is written (and acknowledged) first, then the data keys are
        destroyed, then the events go out; a crash anywhere in between repeats the rest, not the loss."""
        key = str(event.referral_id)
        try:
            change = erase(entry, event, envelope.id, now)
        except UnknownReferral as refusal:
            raise ProcessingError(f"UnknownReferral: {refusal}") from None
        if change.entry is not None:
            await uow.write_through(self.table, key, change.entry)
        destroyed = await self.sealer.destroy(event.data_subject())
        if change.entry is not None:
            log.info("referral_erased", referral_id=key, reason=event.reason, data_keys=destroyed)
        self._apply(uow, key, Change(None, change.events), envelope)

    async def on_inbound(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """A submission an agency system produced to Kafka: the same validation as a POST, then a command."""
        assert isinstance(event, InboundSubmission)
        agency_id = envelope.source.removeprefix("/agencies/")
        if agency_id == envelope.source or not agency_id:
            raise ProcessingError("ce_source must be /agencies/<agency id>")
        if self.agencies.get(agency_id) is None:
            await self.agencies.view.sync()
            if self.agencies.get(agency_id) is None:
                raise ProcessingError(f"unknown agency {agency_id!r} in ce_source")
        submission = ReferralSubmission.model_validate(event.model_dump())
        command = SubmitReferral(
            referral_id=referral_id_for(agency_id, submission.agency_reference),
            agency_id=agency_id,
            submission=submission,
            fingerprint=submission.fingerprint(),
            received_at=envelope.time,
            channel="kafka",
        )
        uow.emit(
            command,
            self.commands_topic,
            event_id=derive_id(envelope.id, "submit"),
            correlation_id=envelope.correlationid,
            cause=envelope,
        )

    async def on_matching_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, MatchProposed | MatchDeferred | CircleFormed | ProposalCancelled):
            return  # volunteer reminders are not about referrals
        key = str(event.referral_id)
        change = on_matching_event(uow.get(self.table, key), event, envelope.id, envelope.time)
        self._apply(uow, key, change, envelope)

    def _apply(self, uow: UnitOfWork, key: str, change: Change, cause: Envelope) -> None:
        for event_id, event in change.events:
            uow.emit(
                event, self.events_topic, event_id=event_id, correlation_id=cause.correlationid, cause=cause
            )
        if change.entry is not None:
            uow.put(self.table, key, change.entry)

    async def purge_inbound(self, _: UnitOfWork) -> None:
        """Timer: delete the plain inbound submissions this group has committed past (see ``purge``)."""
        await self.purger.purge()

    async def reassess_due(self, uow: UnitOfWork) -> None:
        """Timer: ask for deferred referrals whose release date has come into the window to be assessed.
        An index of the dates (kept as records change) finds them: no scan of the table."""
        today = scheme_today(self.clock.now())
        due = []
        for key in itertools.islice(
            self.table.indexed(REASSESS_INDEX, upto=today.isoformat()), REASSESS_BATCH
        ):
            entry = self.table.get(key)
            if entry is not None and entry.record is not None and due_for_reassessment(entry.record, today):
                due.append(entry.record.referral_id)
        for referral_id in due:
            command = ReassessReferral(referral_id=referral_id, as_of=today)
            uow.emit(
                command,
                self.commands_topic,
                event_id=derive_id(referral_id, "reassess", today),
                correlation_id=f"reassess-{referral_id}",
            )
        if due:
            log.info("reassessment_requested", count=len(due), as_of=today.isoformat())


def _reassess_text(entry: ReassessmentView) -> str | None:
    due = reassessment_date(entry.record) if entry.record is not None else None
    return due.isoformat() if due is not None else None
