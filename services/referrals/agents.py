"""The referrals worker: the single writer of referral state.

Agents (thin adapters around ``domain.referral``):
* commands (from the API, the inbound agent and the re-assessment timer) → record + referral events;
* inbound Kafka submissions → the agency's signature verified (``domain.inbound_signature``: ``ce_source``
  alone proves nothing, every agency system shares one Kafka principal), validated like a POST, a command;
* matching events → the referral's status and history;
* circles facts (and the summaries of the concerns raised, from the circles commands) → the table of the
  referrals' circles that the partner API reads (``domain.circles``);
* a timer purges the inbound topic of the submissions already processed (``purge``).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from typing import Any

from schemas.common import SLUG_PATTERN
from schemas.envelope import Envelope, Event
from schemas.events.circles import CircleEnded, CircleFact, RaiseConcern
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
    CIRCLES_COMMANDS,
    CIRCLES_EVENTS,
    MATCHING_EVENTS,
    REFERRAL_EVENTS,
    REFERRALS_CIRCLES,
    REFERRALS_COMMANDS,
    REFERRALS_INBOUND,
    REFERRALS_STATE,
)
from services.protection.sealer import build_sealer
from services.referrals.agencies import AgencyDirectory
from services.referrals.domain import circles
from services.referrals.domain.inbound_signature import SignatureRefused, verify
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


def inbound_subject(record: Any) -> str | None:
    """The referral an inbound record is about (``referral:<id>``, from the agency its ``ce_source`` names and
    its key, the agency's reference), so that its dead letter is sealed under the referral's data key and
    erasing the referral destroys it; None when the record does not say (a key of its own then)."""
    headers = dict(record.headers or ())
    source = (headers.get("ce_source") or b"").decode(errors="replace")
    agency_id = source.removeprefix("/agencies/")
    try:
        body = json.loads(record.value or b"")
    except (ValueError, RecursionError):  # not JSON, or nested too deep to decode: the record does not say
        body = None
    given = body.get("agency_reference") if isinstance(body, dict) else None
    reference = given if isinstance(given, str) else (record.key or b"").decode(errors="replace")
    if agency_id == source or not re.match(SLUG_PATTERN, agency_id) or not reference.strip():
        return None
    return f"referral:{referral_id_for(agency_id, reference)}"


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
        self.circles = self.worker.table(
            "circles", circles.CircleEntry, REFERRALS_CIRCLES, subject="referral"
        )
        self.commands_topic = prefix + REFERRALS_COMMANDS.name
        self.events_topic = prefix + REFERRAL_EVENTS.name
        self.agencies = AgencyDirectory(settings.bootstrap_servers(), prefix)
        self.worker.resource(self.agencies.start, self.agencies.stop)
        self.worker.route(REFERRALS_COMMANDS, self.on_command)
        self.worker.route(
            REFERRALS_INBOUND,
            self.on_inbound,
            seal_dead_letters="inbound",
            dead_letter_subject=inbound_subject,
            authenticate=self.authenticate_inbound,
        )
        self.worker.route(MATCHING_EVENTS, self.on_matching_event)
        self.worker.route(CIRCLES_EVENTS, self.on_circle_fact)
        self.worker.route(CIRCLES_COMMANDS, self.on_circle_command)
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
        if uow.get(self.circles, key) is not None:
            await uow.write_through(self.circles, key, None)  # its concerns' summaries go with it
        destroyed = await self.sealer.destroy(event.data_subject())
        if change.entry is not None:
            log.info("referral_erased", referral_id=key, reason=event.reason, data_keys=destroyed)
        self._apply(uow, key, Change(None, change.events), envelope)

    async def authenticate_inbound(self, envelope: Envelope, record: Any) -> None:
        """The agency ``ce_source`` names must have signed the record with its own key, or it is refused."""
        agency_id = _agency_of(envelope)
        key = await self._signing_key(agency_id, fresh=False)
        try:
            verify(agency_id, key, record.headers or (), record.value)
        except SignatureRefused as refused:
            fresher = await self._signing_key(agency_id, fresh=True)  # the key rotated a moment ago?
            if fresher == key:
                raise ProcessingError(f"signature refused: {refused}") from None
            try:
                verify(agency_id, fresher, record.headers or (), record.value)
            except SignatureRefused as again:
                raise ProcessingError(f"signature refused: {again}") from None

    async def _signing_key(self, agency_id: str, *, fresh: bool) -> str | None:
        agency = self.agencies.get(agency_id)
        if fresh or agency is None:  # registered, or its key rotated, a moment ago?
            await self.agencies.view.sync()
            agency = self.agencies.get(agency_id)
        if agency is None:
            raise ProcessingError(f"unknown agency {agency_id!r} in ce_source")
        return agency.kafka_signing_key

    async def on_inbound(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """A submission an agency system produced to Kafka, its signature verified (``authenticate_inbound``):
        the same validation as a POST, then a command."""
        assert isinstance(event, InboundSubmission)
        agency_id = _agency_of(envelope)
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

    async def on_circle_fact(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """The circles service's facts: an ended circle ends the referral's journey (status circle_ended);
        and the agency's view of its circle (and its concerns) follows each fact."""
        assert isinstance(event, CircleFact)
        key = str(event.referral_id)
        if isinstance(event, CircleEnded):
            change = on_matching_event(uow.get(self.table, key), event, envelope.id, envelope.time)
            self._apply(uow, key, change, envelope)
        if self._erased(uow, key):
            return
        entry = circles.apply_fact(uow.get(self.circles, key), event)
        if entry is not None:
            uow.put(self.circles, key, entry)

    async def on_circle_command(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """Of the circles commands, only a raised concern's summary is kept (for its agency to read);
        minutes and everything else are the circles service's own."""
        if not isinstance(event, RaiseConcern):
            return
        key = str(event.referral_id)
        if self._erased(uow, key):
            return
        entry = circles.add_summary(uow.get(self.circles, key), event)
        if entry is not None:
            uow.put(self.circles, key, entry)

    def _erased(self, uow: UnitOfWork, key: str) -> bool:
        referral: ReferralEntry | None = uow.get(self.table, key)
        return referral is not None and referral.record is not None and referral.record.erased

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


def _agency_of(envelope: Envelope) -> str:
    agency_id = envelope.source.removeprefix("/agencies/")
    if agency_id == envelope.source or not agency_id:
        raise ProcessingError("ce_source must be /agencies/<agency id>")
    return agency_id


def _reassess_text(entry: ReassessmentView) -> str | None:
    due = reassessment_date(entry.record) if entry.record is not None else None
    return due.isoformat() if due is not None else None
