"""The notifications worker: routes referral and matching events to messages, delivers each message once,
retries failures with back-off, and raises service-level escalations and the daily digest.

Three routes and two timers on one ``StreamWorker``:
* referral events, matching events, circles facts → the referral's progress (own table) and
  ``NotificationRequested`` records on the requests topic, keyed by notification id;
* requests (and retries) → delivery, in batches: intent recorded first (``write_through``), messages sent
  concurrently, each success appended to the sent-journal, results staged in the delivery log, outcome
  events published (``NotificationDelivered`` / ``NotificationDeadLettered``);
* timer: failed deliveries whose back-off has passed → ``DeliveryRetryDue`` on the requests topic;
* timer: referrals past a service level → escalation to the coordinator; the daily digest.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime

from schemas.envelope import Envelope, Event
from schemas.events.agencies import AgencyRecord
from schemas.events.circles import CircleFact
from schemas.events.notifications import ChannelKind, DeliveryRetryDue, NotificationRequested
from schemas.topics import (
    CIRCLES_EVENTS,
    MATCHING_EVENTS,
    NOTIFICATION_EVENTS,
    NOTIFICATION_LOG,
    NOTIFICATION_PROGRESS,
    NOTIFICATION_REQUESTS,
    REFERRAL_EVENTS,
)
from services.notifications.channels import Accepted, Mailer, SendResult, WebhookSender
from services.notifications.domain import delivery, digest, routing
from services.notifications.domain.delivery import DeliveryEntry, DeliveryStatus
from services.notifications.journal import SentJournal
from services.notifications.rendering import render, webhook_body
from services.notifications.settings import NotificationsSettings
from services.referral_progress import progress
from services.referral_progress import service_levels as sla
from services.referral_progress.progress import ReferralProgress
from services.referrals.agencies import AgencyDirectory
from services.runtime.clock import clock_from_setting
from services.runtime.ids import derive_id
from services.runtime.kafka import CompactedView
from services.runtime.logs import get_logger, log_context
from services.runtime.tables import NotHeld
from services.runtime.worker import Item, StreamWorker, UnitOfWork

log = get_logger(__name__)
SERVICE = "notifications"
Send = Callable[[Accepted], Awaitable[SendResult]]
RETRY_INDEX = "retry_at"
ESCALATION_INDEX = "escalate_at"
PER_RUN = 2_000
"""Entries a timer takes from an index in one run (the rest in the next): short units of work."""


def _moment(at: datetime) -> str:
    """A time as index text: UTC, fixed width, so that text order is time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _retry_text(entry: DeliveryEntry) -> str | None:
    failed = entry.status is DeliveryStatus.FAILED and entry.next_attempt_at is not None
    return _moment(entry.next_attempt_at) if failed and entry.next_attempt_at is not None else None


def _parse_progress(value: bytes) -> ReferralProgress:
    return ReferralProgress.model_validate_json(value)


class NotificationsWorker:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        self.clock = clock_from_setting(settings.clock)
        self.routing = settings.routing()
        self.backoff = settings.backoff()
        self.levels = settings.service_levels()
        self.schedule = settings.digest()
        prefix = settings.topic_prefix
        bootstrap = settings.bootstrap_servers()
        self.worker = StreamWorker(SERVICE, settings)
        self.log = self.worker.table("delivery-log", DeliveryEntry, NOTIFICATION_LOG)
        self.progress = self.worker.table("progress", ReferralProgress, NOTIFICATION_PROGRESS)
        self.log.index(RETRY_INDEX, _retry_text)
        self.progress.index(ESCALATION_INDEX, self._escalation_text)
        self.requests_topic = prefix + NOTIFICATION_REQUESTS.name
        self.events_topic = prefix + NOTIFICATION_EVENTS.name
        self.agencies = AgencyDirectory(bootstrap, prefix)
        self.all_progress: CompactedView[ReferralProgress] = CompactedView(
            bootstrap, prefix + NOTIFICATION_PROGRESS.name, _parse_progress, client_id="circles-notifications"
        )
        self.mailer = Mailer(settings)
        self.webhooks = WebhookSender(settings)
        journal_name = f"{prefix}{settings.worker_id or 'worker'}.sent-journal"
        self.journal = SentJournal(settings.data_dir / "notifications" / journal_name)
        self._sending = asyncio.Semaphore(settings.send_concurrency)
        self._retried: dict[str, int] = {}  # retries asked for by this process, not yet taken: not again
        self._digest_for: date | None = None

        self.worker.resource(self.journal.start, self.journal.stop)
        self.worker.resource(self.agencies.start, self.agencies.stop)
        self.worker.resource(self.webhooks.start, self.webhooks.stop)
        if settings.digest_enabled:
            self.worker.resource(self.all_progress.start, self.all_progress.stop)
        self.worker.route(REFERRAL_EVENTS, self.on_event)
        self.worker.route(MATCHING_EVENTS, self.on_event)
        self.worker.route(CIRCLES_EVENTS, self.on_event)
        self.worker.route_batch(NOTIFICATION_REQUESTS, self.on_requests)
        self.worker.timer(settings.retry_scan_interval_s, self.request_retries)
        self.worker.timer(settings.schedule_interval_s, self.check_schedule)
        if not settings.coordinator_email:
            log.warning(
                "no_coordinator_email", hint="set CIRCLES_COORDINATOR_EMAIL; the coordinator is not told"
            )

    # -- routing -------------------------------------------------------------------------------------------

    async def on_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """Follow the referral's progress, and ask for the messages the event causes."""
        known: ReferralProgress | None = None
        if isinstance(event, progress.FOLLOWED):
            key = str(event.referral_id)
            current = uow.get(self.progress, key)
            known = progress.apply(current, event, envelope.time)
            if known is not None and known != current:
                uow.put(self.progress, key, known)
        elif isinstance(event, CircleFact):  # for the agency's own reference in the message
            known = uow.get(self.progress, str(event.referral_id))
        agencies = await self._agencies(event)
        for request in routing.route(envelope, event, agencies, self.routing, known):
            self._request(uow, request, envelope.correlationid, envelope)

    async def _agencies(self, event: Event) -> Mapping[str, AgencyRecord]:
        """The registry; brought up to date first when the event names an agency it does not know yet."""
        agency_id = getattr(event, "agency_id", None)
        if isinstance(agency_id, str) and self.agencies.get(agency_id) is None:
            async with asyncio.timeout(30):
                await self.agencies.view.sync()
            if self.agencies.get(agency_id) is None:
                log.warning("unknown_agency", agency_id=agency_id)
        return dict(self.agencies.view.items())

    def _request(
        self, uow: UnitOfWork, request: NotificationRequested, correlation_id: str, cause: Envelope | None
    ) -> None:
        uow.emit(
            request,
            self.requests_topic,
            event_id=derive_id(request.notification_id, "requested"),
            correlation_id=correlation_id,
            cause=cause,
        )

    # -- delivery ------------------------------------------------------------------------------------------

    async def on_requests(self, uow: UnitOfWork, items: list[Item]) -> None:
        """Deliver a batch of requests and retries: intents first, then the sends, then the results."""
        now = self.clock.now()
        todo: list[tuple[DeliveryEntry, Envelope]] = []
        seen: set[str] = set()
        for item in items:
            event = item.event
            assert isinstance(event, NotificationRequested | DeliveryRetryDue)
            key = str(event.notification_id)
            if key in seen:
                continue
            seen.add(key)
            entry: DeliveryEntry | None = uow.get(self.log, key)
            attempt = delivery.attempt_due(entry, event)
            if attempt is None:
                continue  # sent, dead, or an out-of-date retry: nothing to do
            if entry is None and not isinstance(event, NotificationRequested):
                continue
            request = event if isinstance(event, NotificationRequested) else None
            pending = delivery.intent(entry, request, attempt, item.envelope.correlationid, now)
            if key in self.journal:  # sent before a crash; only the result was not recorded
                log.info("notification_found_in_journal", notification_id=key)
                self._finish(uow, delivery.sent(pending, now), item.envelope)
                continue
            if entry is not None and entry.status is DeliveryStatus.PENDING:
                log.info("notification_in_doubt_resent", notification_id=key, attempt=attempt)
            todo.append((pending, item.envelope))
        if not todo:
            return
        sends = [self._prepare(pending) for pending, _ in todo]  # the CPU work, before any message goes
        await asyncio.gather(*(uow.write_through(self.log, str(p.notification_id), p) for p, _ in todo))
        try:
            results = await asyncio.gather(
                *(self._send(pending, send) for (pending, _), send in zip(todo, sends, strict=True))
            )
        finally:
            await self.mailer.close()  # the batch's SMTP connections, each reused for message after message
        self.journal.sync()
        now = self.clock.now()
        for (pending, cause), result in zip(todo, results, strict=True):
            if result.ok:
                final = delivery.sent(pending, now)
            else:
                final = delivery.failed(
                    pending, result.error or "unknown", result.permanent, self.backoff, now
                )
            self._finish(uow, final, cause)
        if self.journal.lines > self.journal.compact_after:
            dropped = self.journal.compact(self._still_in_doubt)
            log.info("sent_journal_compacted", dropped=dropped, kept=self.journal.lines)

    def _prepare(self, entry: DeliveryEntry) -> Send | SendResult:
        """Render and sign now, so that while messages are in flight the event loop has little else to do
        and notices each acceptance at once (the sent-journal's in-doubt window is that delay)."""
        key = str(entry.notification_id)
        try:
            if entry.recipient.channel is ChannelKind.WEBHOOK:
                agency = self.agencies.get(entry.recipient.id)
                if agency is None or not agency.webhook_url or not agency.webhook_secret:
                    return SendResult(ok=False, error="webhook_not_registered", permanent=True)
                body, secret = webhook_body(entry), agency.webhook_secret
                return lambda accepted: self.webhooks.send(
                    entry.recipient.endpoint, body, secret, key, accepted
                )
            message = self.mailer.message(entry, render(entry.template, entry.context), self.clock.now())
            raw = self.mailer.flatten(message)
            return lambda accepted: self.mailer.send(raw, entry.recipient.endpoint, accepted)
        except Exception as error:  # a bug in a template, say: give this message up, keep the others
            log.error("notification_prepare_error", notification_id=key, error=type(error).__name__)
            return SendResult(ok=False, error="internal_error", permanent=True)

    async def _send(self, entry: DeliveryEntry, send: Send | SendResult) -> SendResult:
        """One attempt. The id goes into the sent-journal the moment the receiver has taken the message."""
        if isinstance(send, SendResult):
            return send
        key = str(entry.notification_id)
        async with self._sending:
            try:
                return await send(lambda: self.journal.record(key))
            except Exception as error:  # not one the channel knows: try again later, keep the others
                log.error("notification_send_error", notification_id=key, error=type(error).__name__)
                return SendResult(ok=key in self.journal, error="send_error")

    def _finish(self, uow: UnitOfWork, entry: DeliveryEntry, cause: Envelope) -> None:
        """Stage the result; say what became of a finished message; tell the coordinator of a dead one."""
        key = str(entry.notification_id)
        uow.put(self.log, key, entry)
        self._retried.pop(key, None)
        with log_context(correlation_id=entry.correlation_id):
            self._outcome(uow, entry, cause)

    def _outcome(self, uow: UnitOfWork, entry: DeliveryEntry, cause: Envelope) -> None:
        key = str(entry.notification_id)
        fields = {
            "notification_id": key,
            "template": entry.template,
            "channel": entry.recipient.channel.value,
            "recipient_kind": entry.recipient.kind,
            "recipient_id": entry.recipient.id,
            "attempt": entry.attempts,
        }
        if entry.status is DeliveryStatus.FAILED:
            log.info("notification_failed", error=entry.last_error, **fields)
            return
        outcome = delivery.outcome(entry)
        uow.emit(
            outcome,
            self.events_topic,
            event_id=derive_id(entry.notification_id, entry.status.value),
            correlation_id=entry.correlation_id,
            cause=cause,
        )
        if entry.status is DeliveryStatus.SENT:
            log.info("notification_sent", **fields)
            return
        log.warning("notification_dead_lettered", error=entry.last_error, **fields)
        for request in routing.failure_requests(entry, cause, self.routing):
            self._request(uow, request, entry.correlation_id, cause)

    def _still_in_doubt(self, notification_id: str) -> bool:
        """Journal ids to keep: those whose result is not committed in a partition held here."""
        try:
            entry = self.log.get(notification_id)
        except NotHeld:
            return True
        return entry is None or not entry.finished

    # -- retries -------------------------------------------------------------------------------------------

    async def request_retries(self, uow: UnitOfWork) -> None:
        """Timer: publish ``DeliveryRetryDue`` for failed deliveries whose back-off has passed (found in an
        index of the delivery log kept as entries change: no scan of the log)."""
        now = self.clock.now()
        due = itertools.islice(self.log.indexed(RETRY_INDEX, upto=_moment(now)), PER_RUN)
        for key in list(due):
            entry = self.log.get(key)
            retry = delivery.retry_due(entry, now) if entry is not None else None
            if entry is None or retry is None or self._retried.get(key) == retry.attempt:
                continue
            self._retried[key] = retry.attempt
            uow.emit(
                retry,
                self.requests_topic,
                event_id=derive_id(entry.notification_id, "retry", retry.attempt),
                correlation_id=entry.correlation_id,
            )

    # -- service levels and the digest ------------------------------------------------------------------

    async def check_schedule(self, uow: UnitOfWork) -> None:
        """Timer: escalate referrals past a service level (once per wait); send the day's digest. Due
        escalations come from an index of when each referral's next one falls due: no scan of the table."""
        now = self.clock.now()
        due = itertools.islice(self.progress.indexed(ESCALATION_INDEX, upto=_moment(now)), PER_RUN)
        for key in list(due):
            item = self.progress.get(key)
            if item is None:
                continue
            overdue = sla.escalations(item, now, self.levels)
            for escalation in overdue:
                cause_id, requests = routing.escalation_requests(item, escalation, now, self.routing)
                for request in requests:
                    self._request(uow, request, str(cause_id), None)
                log.info("referral_escalated", referral_id=key, kind=escalation.kind)
            if overdue:
                marked = [*item.escalated, *(escalation.key for escalation in overdue)]
                uow.put(self.progress, key, item.model_copy(update={"escalated": marked}))
        if self.settings.digest_enabled:
            await self._digest(uow, now)
        log.debug("schedule_checked", upto=_moment(now))

    def _escalation_text(self, item: ReferralProgress) -> str | None:
        at = sla.next_escalation_at(item, self.levels)
        return _moment(at) if at is not None else None

    async def _digest(self, uow: UnitOfWork, now: datetime) -> None:
        """Every worker may ask for the day's digest; its notification id is the day's, so one is sent."""
        day = digest.digest_due(now, self.schedule, self.levels)
        if day is None or day == self._digest_for:
            return
        async with asyncio.timeout(30):
            await self.all_progress.sync()
        figures = digest.figures(self.all_progress.values(), now, self.levels)
        for request in routing.digest_requests(day, figures, now, self.routing):
            self._request(uow, request, f"digest-{day.isoformat()}", None)
        self._digest_for = day
        log.info("digest_requested", day=day.isoformat())
