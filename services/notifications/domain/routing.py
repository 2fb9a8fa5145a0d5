"""Who is told what: from one event (and the agency registry and configuration) to the messages it causes.

Pure: no clock, no I/O. Each message is one ``NotificationRequested`` for one recipient on one channel,
with a notification id derived from what caused it and from the recipient, so that routing the same event
again (a redelivery after a crash) asks for the very same messages, which the delivery log then drops.

| event                                | template                         | to                              |
| ------------------------------------ | -------------------------------- | ------------------------------- |
| referral submitted (version 1)       | referral_received                | referring agency                |
| referral submitted (version 2+)      | referral_amended                 | referring agency                |
| referral assessed: needs information | needs_information                | referring agency                |
| referral assessed: other outcomes    | decision_made                    | referring agency                |
| referral withdrawn                   | referral_withdrawn               | referring agency                |
| match proposed                       | match_proposed                   | coordinator                     |
| match deferred                       | match_deferred                   | coordinator                     |
| proposal cancelled                   | proposal_cancelled               | coordinator                     |
| circle formed                        | circle_formed / ..._outer_circle | referring agency / outer circle |
| volunteer reminder: DBS expiring     | dbs_expiring (60/30/7 days)      | coordinator                     |
| volunteer reminder: supervision      | supervision_overdue              | coordinator                     |
| circle: meeting recorded             | meeting_recorded                 | referring agency (webhook)      |
| circle: concern raised, routine      | concern_raised                   | referring agency (webhook)      |
| circle: concern raised, urgent       | concern_raised                   | referring agency, coordinator   |
| circle: concern escalated            | concern_escalated                | referring agency, coordinator   |
| circle: review recorded              | review_recorded                  | referring agency (webhook)      |
| circle: ended                        | circle_ended                     | referring agency (webhook)      |

Agencies are told by email (``contact_email``) and by signed webhook (``webhook_url``), whichever they
registered; of a circle's life, only an urgent concern and an escalation are emailed (to the agency's contact
and the coordinator), the rest goes to the agency's system by webhook. A concern's message carries its id, its
level and a link (the agency reads the summary over the partner API): never its text, nor the minutes. The
outer circle of a new circle is every probation and police agency covering the circle's local authority.
Timers add service-level escalations, the daily digest and delivery failures (below).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from schemas.common import Outcome, ReferralStatus
from schemas.envelope import Envelope, Event
from schemas.events.agencies import AgencyKind, AgencyRecord
from schemas.events.circles import (
    CircleEnded,
    CircleFact,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    MeetingRecorded,
    ReviewRecorded,
    circle_id_of,
)
from schemas.events.matching import (
    CircleFormed,
    MatchDeferred,
    MatchProposed,
    ProposalCancelled,
    ReminderKind,
    VolunteerReminderDue,
)
from schemas.events.notifications import ChannelKind, NotificationContext, NotificationRequested, Recipient
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn
from services.notifications.domain.delivery import DeliveryEntry
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.service_levels import Escalation
from services.runtime.ids import derive_id

OUTER_CIRCLE_KINDS = frozenset({AgencyKind.PROBATION, AgencyKind.POLICE})
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class RoutingConfig:
    coordinator_email: str | None
    partner_api_url: str
    """Base URL of the partner API: links to a referral for its agency."""
    coordinator_url: str
    """Base URL of the coordinator page: links to proposals, referrals and volunteers."""
    dbs_reminder_days: tuple[int, ...] = (60, 30, 7)

    def referral_link(self, referral_id: object) -> str:
        return f"{self.partner_api_url.rstrip('/')}/v1/referrals/{referral_id}"

    def concern_link(self, concern_id: object) -> str:
        return f"{self.partner_api_url.rstrip('/')}/v1/concerns/{concern_id}"

    def page_link(self, *path: object) -> str:
        return "/".join([self.coordinator_url.rstrip("/"), *(str(part) for part in path)])


def agency_recipients(agency: AgencyRecord) -> list[Recipient]:
    recipients = []
    if agency.contact_email:
        recipients.append(
            Recipient(
                kind="agency", id=agency.agency_id, channel=ChannelKind.EMAIL, endpoint=agency.contact_email
            )
        )
    if agency.webhook_url and agency.webhook_secret:
        recipients.append(
            Recipient(
                kind="agency", id=agency.agency_id, channel=ChannelKind.WEBHOOK, endpoint=agency.webhook_url
            )
        )
    return recipients


def coordinator_recipients(config: RoutingConfig) -> list[Recipient]:
    if not config.coordinator_email:
        return []
    return [
        Recipient(
            kind=COORDINATOR, id=COORDINATOR, channel=ChannelKind.EMAIL, endpoint=config.coordinator_email
        )
    ]


def notification_id(cause_key: uuid.UUID, recipient: Recipient) -> uuid.UUID:
    return derive_id(cause_key, recipient.kind, recipient.id, recipient.channel.value)


def _requests(
    cause_key: uuid.UUID,
    cause: Envelope,
    template: str,
    recipients: Iterable[Recipient],
    context: NotificationContext,
) -> list[NotificationRequested]:
    return [
        NotificationRequested(
            notification_id=notification_id(cause_key, recipient),
            cause_event_id=cause.id,
            cause_event_type=cause.type,
            template=template,
            recipient=recipient,
            context=context,
            requested_at=cause.time,
        )
        for recipient in recipients
    ]


def route(
    envelope: Envelope,
    event: Event,
    agencies: Mapping[str, AgencyRecord],
    config: RoutingConfig,
    progress: ReferralProgress | None = None,
) -> list[NotificationRequested]:
    """The messages ``event`` causes (none for events nobody needs to hear about). ``progress``, what the
    service knows of the referral, supplies the agency's own reference that matching events lack."""
    if isinstance(event, ReferralSubmitted | ReferralAssessed | ReferralWithdrawn):
        return _referral_event(envelope, event, agencies, config)
    if isinstance(event, MatchProposed | MatchDeferred | ProposalCancelled):
        return _coordinator_event(envelope, event, config)
    if isinstance(event, CircleFormed):
        reference = progress.agency_reference if progress is not None else None
        return _circle_formed(envelope, event, agencies, config, reference)
    if isinstance(event, VolunteerReminderDue):
        return _reminder(envelope, event, config)
    if isinstance(event, CircleFact):
        reference = progress.agency_reference if progress is not None else None
        return circle_requests(envelope, event, agencies, config, reference)
    return []


def _referrer(agencies: Mapping[str, AgencyRecord], agency_id: str) -> list[Recipient]:
    agency = agencies.get(agency_id)
    return agency_recipients(agency) if agency is not None else []


def _referral_event(
    envelope: Envelope,
    event: ReferralSubmitted | ReferralAssessed | ReferralWithdrawn,
    agencies: Mapping[str, AgencyRecord],
    config: RoutingConfig,
) -> list[NotificationRequested]:
    base = {
        "referral_id": event.referral_id,
        "agency_id": event.agency_id,
        "agency_reference": event.agency_reference,
        "link": config.referral_link(event.referral_id),
    }
    if isinstance(event, ReferralSubmitted):
        template = "referral_received" if event.version == 1 else "referral_amended"
        context = NotificationContext(**base, status=ReferralStatus.RECEIVED)
    elif isinstance(event, ReferralWithdrawn):
        template = "referral_withdrawn"
        context = NotificationContext(**base, status=ReferralStatus.WITHDRAWN)
    else:
        decision = event.decision
        needs = decision.outcome is Outcome.NEEDS_INFORMATION
        template = "needs_information" if needs else "decision_made"
        context = NotificationContext(
            **base,
            status=ReferralStatus(decision.outcome.value),
            reason_codes=[reason.code for reason in decision.reasons],
            due_on=decision.reassess_on,
        )
    return _requests(envelope.id, envelope, template, _referrer(agencies, event.agency_id), context)


def _coordinator_event(
    envelope: Envelope, event: MatchProposed | MatchDeferred | ProposalCancelled, config: RoutingConfig
) -> list[NotificationRequested]:
    base = {"referral_id": event.referral_id, "agency_id": event.agency_id}
    if isinstance(event, MatchProposed):
        template = "match_proposed"
        context = NotificationContext(
            **base,
            status=ReferralStatus.PROPOSED,
            proposal_id=event.proposal_id,
            reason_codes=[flag.value for flag in event.flags],
            figures={"volunteers": len(event.volunteers), "attempt": event.attempt},
            link=config.page_link("proposals", event.proposal_id),
        )
    elif isinstance(event, MatchDeferred):
        template = "match_deferred"
        context = NotificationContext(
            **base,
            status=ReferralStatus.AWAITING_VOLUNTEERS,
            reason_codes=[reason.code for reason in event.reasons],
            link=config.page_link("referrals", event.referral_id),
        )
    else:
        template = "proposal_cancelled"
        context = NotificationContext(
            **base,
            proposal_id=event.proposal_id,
            reason_codes=[event.reason],
            link=config.page_link("proposals", event.proposal_id),
        )
    return _requests(envelope.id, envelope, template, coordinator_recipients(config), context)


def outer_circle(agencies: Mapping[str, AgencyRecord], event: CircleFormed) -> list[AgencyRecord]:
    """Probation and police agencies covering the circle's area, other than the referring agency."""
    return sorted(
        (
            agency
            for agency in agencies.values()
            if agency.kind in OUTER_CIRCLE_KINDS
            and event.local_authority in agency.local_authorities
            and agency.agency_id != event.agency_id
        ),
        key=lambda agency: agency.agency_id,
    )


def _circle_formed(
    envelope: Envelope,
    event: CircleFormed,
    agencies: Mapping[str, AgencyRecord],
    config: RoutingConfig,
    reference: str | None,
) -> list[NotificationRequested]:
    base = {
        "referral_id": event.referral_id,
        "agency_id": event.agency_id,
        "status": ReferralStatus.CIRCLE_FORMED,
        # the circle's id as the partner API, the later circle webhooks and `circles circle` name it (not
        # matching's internal id of the formation), so that an agency can follow one circle by one id
        "circle_id": circle_id_of(event.referral_id),
        "figures": {"volunteers": len(event.volunteer_ids)},
        "link": config.referral_link(event.referral_id),
    }
    requests = _requests(
        envelope.id,
        envelope,
        "circle_formed",
        _referrer(agencies, event.agency_id),
        NotificationContext(**base, agency_reference=reference),
    )
    others = [
        recipient for agency in outer_circle(agencies, event) for recipient in agency_recipients(agency)
    ]
    return requests + _requests(
        envelope.id, envelope, "circle_formed_outer_circle", others, NotificationContext(**base)
    )


CIRCLE_TEMPLATES: dict[type[CircleFact], str] = {
    MeetingRecorded: "meeting_recorded",
    ConcernRaised: "concern_raised",
    ConcernEscalated: "concern_escalated",
    ReviewRecorded: "review_recorded",
    CircleEnded: "circle_ended",
}
"""The circle facts an agency hears of (the webhook's ``event_type``); the others (activation: the agency had
``circle_formed``; minutes; acknowledgements, which the agency made; extensions) are not sent."""


def emailed(event: CircleFact) -> bool:
    """An urgent concern and an escalation are emailed too (agency contact and coordinator)."""
    urgent = isinstance(event, ConcernRaised) and event.level is ConcernLevel.URGENT
    return urgent or isinstance(event, ConcernEscalated)


def circle_context(
    event: CircleFact, config: RoutingConfig, reference: str | None, *, for_coordinator: bool = False
) -> NotificationContext:
    """Ids, dates, codes and a link: what a message about a circle's fact may carry."""
    concern_id, level = None, None
    if isinstance(event, ConcernRaised | ConcernEscalated):
        concern_id, level = event.concern_id, event.level
    status, reason_codes = ReferralStatus.CIRCLE_FORMED, []
    if isinstance(event, CircleEnded):
        status = ReferralStatus.CIRCLE_ENDED
        reason_codes = [event.outcome.value, *([event.reason.value] if event.reason else [])]
    if for_coordinator:
        link = config.page_link("circles", event.circle_id)
    elif concern_id is not None:
        link = config.concern_link(concern_id)
    else:
        link = config.referral_link(event.referral_id)
    return NotificationContext(
        referral_id=event.referral_id,
        agency_id=event.agency_id,
        agency_reference=reference,
        status=status,
        circle_id=event.circle_id,
        concern_id=concern_id,
        level=level,
        reason_codes=reason_codes,
        due_on=event.next_review_due if isinstance(event, ReviewRecorded) else None,
        link=link,
    )


def circle_requests(
    envelope: Envelope,
    event: CircleFact,
    agencies: Mapping[str, AgencyRecord],
    config: RoutingConfig,
    reference: str | None = None,
) -> list[NotificationRequested]:
    """The referring agency's webhook for each fact it hears of; for an urgent concern and an escalation,
    an email to its contact and to the coordinator as well."""
    template = CIRCLE_TEMPLATES.get(type(event))
    if template is None:
        return []
    recipients = [
        r for r in _referrer(agencies, event.agency_id) if r.channel is ChannelKind.WEBHOOK or emailed(event)
    ]
    requests = _requests(
        envelope.id, envelope, template, recipients, circle_context(event, config, reference)
    )
    if emailed(event):
        coordinator = circle_context(event, config, reference, for_coordinator=True)
        requests += _requests(envelope.id, envelope, template, coordinator_recipients(config), coordinator)
    return requests


def reminder_bucket(event: VolunteerReminderDue, config: RoutingConfig) -> int | None:
    """The DBS threshold (60, 30, 7 days) a reminder falls under; ``None``: too early to tell anyone."""
    crossed = [days for days in config.dbs_reminder_days if event.days_left <= days]
    return min(crossed) if crossed else None


def _reminder(
    envelope: Envelope, event: VolunteerReminderDue, config: RoutingConfig
) -> list[NotificationRequested]:
    """One message per volunteer, check and threshold, however often (or late) the reminder is raised."""
    base = {
        "volunteer_id": event.volunteer_id,
        "due_on": event.due_on,
        "days_left": event.days_left,
        "link": config.page_link("volunteers", event.volunteer_id),
    }
    if event.kind is ReminderKind.DBS_EXPIRING:
        bucket = reminder_bucket(event, config)
        if bucket is None:
            return []
        key = derive_id("reminder", event.volunteer_id, event.kind.value, event.due_on, bucket)
        context = NotificationContext(**base, figures={"threshold_days": bucket})
        return _requests(key, envelope, "dbs_expiring", coordinator_recipients(config), context)
    key = derive_id("reminder", event.volunteer_id, event.kind.value, event.due_on)
    context = NotificationContext(**base)
    return _requests(key, envelope, "supervision_overdue", coordinator_recipients(config), context)


# -- messages the service raises itself ---------------------------------------------------------------


def escalation_requests(
    progress: ReferralProgress, escalation: Escalation, now: datetime, config: RoutingConfig
) -> tuple[uuid.UUID, list[NotificationRequested]]:
    """A referral waiting past a service level, to the coordinator. Returns the cause id too."""
    cause_id = derive_id("sla", progress.referral_id, escalation.key)
    cause = _own_cause(cause_id, "circles.notification.sla-escalation", now)
    context = NotificationContext(
        referral_id=progress.referral_id,
        agency_id=progress.agency_id,
        agency_reference=progress.agency_reference,
        status=progress.status,
        reason_codes=[escalation.kind],
        due_on=escalation.due_at.date(),
        waiting_days=escalation.waiting_days,
        link=config.page_link("referrals", progress.referral_id),
    )
    return cause_id, _requests(cause_id, cause, "sla_escalation", coordinator_recipients(config), context)


def digest_requests(
    day: date, figures: dict[str, int], now: datetime, config: RoutingConfig
) -> list[NotificationRequested]:
    """The coordinator's digest for ``day``: one per day, whichever worker asks first."""
    cause_id = derive_id("digest", day)
    cause = _own_cause(cause_id, "circles.notification.daily-digest", now)
    context = NotificationContext(due_on=day, figures=figures, link=config.page_link("proposals"))
    return _requests(cause_id, cause, "daily_digest", coordinator_recipients(config), context)


def failure_requests(
    dead: DeliveryEntry, cause: Envelope, config: RoutingConfig
) -> list[NotificationRequested]:
    """Tell the coordinator a message was given up on, unless it was the coordinator's own mailbox that
    failed (the same mailbox would not take the news either; the dead-letter event and the log keep it)."""
    if dead.recipient.kind == COORDINATOR:
        return []
    context = NotificationContext(
        referral_id=dead.referral_id,
        agency_id=dead.recipient.id,
        agency_reference=dead.context.agency_reference,
        status=dead.context.status,
        reason_codes=[dead.last_error or "unknown"],
        figures={"attempts": dead.attempts},
        failed_notification_id=dead.notification_id,
        failed_template=dead.template,
        failed_channel=dead.recipient.channel,
        link=config.page_link("referrals", dead.referral_id) if dead.referral_id else config.page_link(),
    )
    cause_key = derive_id(dead.notification_id, "dead")
    return _requests(cause_key, cause, "delivery_failed", coordinator_recipients(config), context)


def _own_cause(cause_id: uuid.UUID, kind: str, now: datetime) -> Envelope:
    return Envelope(
        id=cause_id, type=kind, source="/circles/notifications", time=now, correlationid=str(cause_id)
    )
