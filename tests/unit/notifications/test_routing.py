"""The routing table: every event type gives exactly the expected messages, to the expected people."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest

from schemas.common import LocalAuthority, Outcome, Reason
from schemas.envelope import Envelope, Event
from schemas.events.agencies import AgencyKind, AgencyRecord
from schemas.events.circles import (
    CircleEnded,
    CircleOutcome,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    EndReason,
    MeetingRecorded,
    ReviewRecorded,
)
from schemas.events.matching import CircleFormed, ReminderKind, VolunteerReminderDue
from schemas.events.notifications import ChannelKind
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted
from schemas.partner_api import Decision
from schemas.topics import EVENT_TYPES
from services.notifications.domain.routing import RoutingConfig, route
from services.notifications.rendering import WEBHOOK_TEMPLATES, render, webhook_body
from services.referral_progress.progress import ReferralProgress
from services.runtime.ids import derive_id
from tests.samples import (
    CONCERN_ID,
    MINUTES_SENTINEL,
    NOW,
    SUMMARY_SENTINEL,
    agency_record,
    sample,
    sample_event,
)

CONFIG = RoutingConfig(
    coordinator_email="coordinator@circles.example.org",
    partner_api_url="https://api.circles.example.org",
    coordinator_url="https://coordinator.circles.example.org",
)
REFERRER = "mappa-humberside"


def agency(
    agency_id: str, kind: AgencyKind, areas: list[LocalAuthority], webhook: bool = True
) -> AgencyRecord:
    return agency_record(agency_id).model_copy(
        update={
            "kind": kind,
            "local_authorities": areas,
            "contact_email": f"{agency_id}@agencies.example.org",
            "webhook_url": f"https://{agency_id}.example.org/hooks" if webhook else None,
            "webhook_secret": "secret" if webhook else None,
        }
    )


AGENCIES = {
    a.agency_id: a
    for a in (
        agency(REFERRER, AgencyKind.MAPPA, [LocalAuthority.HULL]),
        agency("police-mosovo", AgencyKind.POLICE, [LocalAuthority.HULL, LocalAuthority.EAST_RIDING]),
        agency("probation-hull", AgencyKind.PROBATION, [LocalAuthority.HULL], webhook=False),
        agency("probation-lincs", AgencyKind.PROBATION, [LocalAuthority.NORTH_LINCOLNSHIRE]),
        agency("safeguarding-hull", AgencyKind.SAFEGUARDING_BOARD, [LocalAuthority.HULL]),
    )
}

REFERRER_BOTH = [("agency", REFERRER, "email"), ("agency", REFERRER, "webhook")]
REFERRER_WEBHOOK = [("agency", REFERRER, "webhook")]
COORDINATOR = [("coordinator", "coordinator", "email")]

EXPECTED: dict[str, tuple[str | None, list[tuple[str, str, str]]]] = {
    "circles.referral.submitted.v1": ("referral_received", REFERRER_BOTH),
    "circles.referral.assessed.v1": ("decision_made", REFERRER_BOTH),
    "circles.referral.withdrawn.v1": ("referral_withdrawn", REFERRER_BOTH),
    "circles.match.proposed.v1": ("match_proposed", COORDINATOR),
    "circles.match.deferred.v1": ("match_deferred", COORDINATOR),
    "circles.match.cancelled.v1": ("proposal_cancelled", COORDINATOR),
    "circles.volunteer.reminder-due.v1": ("dbs_expiring", COORDINATOR),
    "circles.circle.meeting-recorded.v1": ("meeting_recorded", REFERRER_WEBHOOK),
    "circles.circle.concern-raised.v1": ("concern_raised", REFERRER_BOTH + COORDINATOR),  # urgent
    "circles.circle.concern-escalated.v1": ("concern_escalated", REFERRER_BOTH + COORDINATOR),
    "circles.circle.review-recorded.v1": ("review_recorded", REFERRER_WEBHOOK),
    "circles.circle.ended.v1": ("circle_ended", REFERRER_WEBHOOK),
    # circle formed is tested on its own below (two templates)
    "circles.circle.formed.v1": (None, []),
}
"""Every other event type (commands, volunteer records, agency records, the coordinator's decision, the
service's own events) gives no message."""


def envelope_for(event: Event, event_id: uuid.UUID | None = None) -> Envelope:
    return Envelope.for_event(
        event,
        source="/test",
        correlation_id="corr-1",
        event_id=event_id or derive_id(event.event_type),
        time=NOW,
    )


def messages(
    event: Event, agencies: dict[str, AgencyRecord] = AGENCIES, config: RoutingConfig = CONFIG
) -> list[Any]:
    return route(envelope_for(event), event, agencies, config)


def summary(requests: list[Any]) -> list[tuple[str, str, str, str]]:
    return sorted((r.template, r.recipient.kind, r.recipient.id, r.recipient.channel.value) for r in requests)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_gives_exactly_the_expected_messages(event_type: str) -> None:
    event = sample_event(event_type)
    requests = messages(event)
    if event_type == "circles.circle.formed.v1":
        assert {r.template for r in requests} == {"circle_formed", "circle_formed_outer_circle"}
        return
    template, recipients = EXPECTED.get(event_type, (None, []))
    assert summary(requests) == sorted((template, *recipient) for recipient in recipients)
    for request in requests:  # every message the table gives can be rendered and, for agencies, posted
        rendered = render(request.template, request.context)
        assert rendered.subject and rendered.text and "<html" in rendered.html
        if request.recipient.channel is ChannelKind.WEBHOOK:
            assert request.template in WEBHOOK_TEMPLATES


def _assessed(outcome: Outcome, codes: list[str], reassess_on: date | None = None) -> ReferralAssessed:
    decision = Decision(
        outcome=outcome,
        reasons=[Reason(code=code, message=code) for code in codes],
        policy_version="test-1",
        decided_at=NOW,
        reassess_on=reassess_on,
    )
    return sample(ReferralAssessed).model_copy(update={"decision": decision})


@pytest.mark.parametrize(
    ("outcome", "codes", "template", "status"),
    [
        (Outcome.ELIGIBLE, [], "decision_made", "eligible"),
        (Outcome.INELIGIBLE, ["no_consent", "risk_too_low"], "decision_made", "ineligible"),
        (Outcome.DEFERRED, ["release_outside_window"], "decision_made", "deferred"),
        (Outcome.NEEDS_INFORMATION, ["release_date_missing"], "needs_information", "needs_information"),
    ],
)
def test_each_decision_goes_to_the_referring_agency_with_its_reason_codes(
    outcome: Outcome, codes: list[str], template: str, status: str
) -> None:
    requests = messages(_assessed(outcome, codes, date(2027, 3, 1) if outcome is Outcome.DEFERRED else None))
    assert summary(requests) == sorted((template, *recipient) for recipient in REFERRER_BOTH)
    context = requests[0].context
    assert context.status == status and context.reason_codes == codes
    assert context.link == f"https://api.circles.example.org/v1/referrals/{context.referral_id}"
    text = render(template, context).text
    assert all(code in text for code in codes)
    assert "What" in text  # what happens next / what to do next


def test_an_amended_referral_is_acknowledged_as_an_update() -> None:
    amended = sample(ReferralSubmitted).model_copy(update={"version": 2})
    assert {r.template for r in messages(amended)} == {"referral_amended"}


def test_a_circle_formed_goes_to_the_referrer_and_the_outer_circle_of_its_area() -> None:
    formed = sample(CircleFormed)
    assert formed.local_authority is LocalAuthority.HULL and formed.agency_id == REFERRER
    assert summary(messages(formed)) == sorted(
        [
            ("circle_formed", "agency", REFERRER, "email"),
            ("circle_formed", "agency", REFERRER, "webhook"),
            ("circle_formed_outer_circle", "agency", "police-mosovo", "email"),
            ("circle_formed_outer_circle", "agency", "police-mosovo", "webhook"),
            ("circle_formed_outer_circle", "agency", "probation-hull", "email"),
        ]
    )
    progress = ReferralProgress(
        referral_id=formed.referral_id, agency_id=REFERRER, agency_reference="MAPPA-7"
    )
    told = route(envelope_for(formed), formed, AGENCIES, CONFIG, progress)
    referrer = next(r for r in told if r.template == "circle_formed")
    assert render("circle_formed", referrer.context).subject == "Referral MAPPA-7: a circle has been formed"
    outer_circle = next(r for r in told if r.template == "circle_formed_outer_circle")
    assert outer_circle.context.agency_reference is None  # another agency's reference is not theirs to know
    unknown = next(
        r for r in messages(formed) if r.template == "circle_formed"
    )  # before the referral's events
    assert str(formed.referral_id) in render("circle_formed", unknown.context).subject
    in_lincs = formed.model_copy(update={"local_authority": LocalAuthority.NORTH_LINCOLNSHIRE})
    outer = {r.recipient.id for r in messages(in_lincs) if r.template == "circle_formed_outer_circle"}
    assert outer == {"probation-lincs"}


@pytest.mark.parametrize(
    ("days_left", "bucket"),
    [(90, None), (61, None), (60, 60), (45, 60), (30, 30), (8, 30), (7, 7), (0, 7), (-3, 7)],
)
def test_dbs_reminders_are_sent_at_60_30_and_7_days(days_left: int, bucket: int | None) -> None:
    reminder = VolunteerReminderDue(
        volunteer_id="vol-001",
        kind=ReminderKind.DBS_EXPIRING,
        due_on=date(2027, 1, 1),
        days_left=days_left,
        raised_on=NOW.date(),
    )
    requests = messages(reminder)
    if bucket is None:
        assert requests == []
        return
    assert summary(requests) == [("dbs_expiring", *COORDINATOR[0])]
    assert requests[0].context.figures == {"threshold_days": bucket}


def test_a_reminder_raised_again_is_the_same_message() -> None:
    """Whether matching raises reminders daily or at thresholds, the coordinator hears once per threshold."""
    first = VolunteerReminderDue(
        volunteer_id="vol-001",
        kind=ReminderKind.DBS_EXPIRING,
        due_on=date(2027, 1, 1),
        days_left=30,
        raised_on=NOW.date(),
    )
    next_day = first.model_copy(update={"days_left": 29})
    one = route(envelope_for(first, uuid.uuid4()), first, AGENCIES, CONFIG)
    two = route(envelope_for(next_day, uuid.uuid4()), next_day, AGENCIES, CONFIG)
    assert [r.notification_id for r in one] == [r.notification_id for r in two]
    supervision = first.model_copy(update={"kind": ReminderKind.SUPERVISION_OVERDUE, "days_left": -5})
    assert summary(messages(supervision)) == [("supervision_overdue", *COORDINATOR[0])]


def test_notification_ids_are_stable_and_one_per_recipient_and_channel() -> None:
    event = sample(ReferralSubmitted)
    first, again = messages(event), messages(event)
    assert [r.notification_id for r in first] == [r.notification_id for r in again]
    assert len({r.notification_id for r in first}) == len(first) == 2
    other = route(envelope_for(event, uuid.uuid4()), event, AGENCIES, CONFIG)
    assert not {r.notification_id for r in other} & {r.notification_id for r in first}


def test_recipients_come_from_the_registry_and_configuration() -> None:
    email_only = {REFERRER: agency(REFERRER, AgencyKind.MAPPA, [], webhook=False)}
    assert summary(messages(sample(ReferralSubmitted), email_only)) == [
        ("referral_received", "agency", REFERRER, "email")
    ]
    assert messages(sample(ReferralSubmitted), {}) == []  # unknown agency: nobody to tell
    no_coordinator = RoutingConfig(coordinator_email=None, partner_api_url="x", coordinator_url="y")
    proposed = sample_event("circles.match.proposed.v1")
    assert messages(proposed, config=no_coordinator) == []
    request = messages(proposed)[0]
    assert request.recipient.endpoint == "coordinator@circles.example.org"
    assert (
        request.context.link
        == f"https://coordinator.circles.example.org/proposals/{request.context.proposal_id}"
    )


def test_webhook_bodies_carry_references_codes_and_a_link() -> None:
    from services.notifications.domain.delivery import intent

    request = next(
        r
        for r in messages(_assessed(Outcome.INELIGIBLE, ["no_consent"]))
        if r.recipient.channel is ChannelKind.WEBHOOK
    )
    import json

    body = json.loads(webhook_body(intent(None, request, 1, "corr", NOW)))
    assert body["event_id"] == str(request.notification_id)
    assert body["event_type"] == "decision_made" and body["status"] == "ineligible"
    assert body["reason_codes"] == ["no_consent"] and body["link"].endswith(body["referral_id"])
    assert body["agency_reference"] == "MAPPA-2026-0142"


def _webhook(requests: list[Any]) -> dict[str, Any]:
    import json

    from services.notifications.domain.delivery import intent

    request = next(r for r in requests if r.recipient.channel is ChannelKind.WEBHOOK)
    body: dict[str, Any] = json.loads(webhook_body(intent(None, request, 1, "corr", NOW)))
    return body


def test_the_circle_formed_webhook_names_the_circle_as_its_later_webhooks_and_the_partner_api_do() -> None:
    """An agency follows one circle by one id: ``circle_formed`` carried matching's internal id of the
    formation while ``meeting_recorded``... ``circle_ended`` and ``GET /v1/referrals/{id}`` say
    ``circle-<referral id>`` (seen walking issue 11 with `make run`'s webhook receiver)."""
    formed = sample(CircleFormed)
    later = sample(MeetingRecorded).model_copy(update={"referral_id": formed.referral_id})
    assert _webhook(messages(formed))["circle_id"] == f"circle-{formed.referral_id}"
    assert _webhook(messages(later))["circle_id"] == f"circle-{formed.referral_id}"


def test_a_routine_concern_goes_to_the_agency_system_only_an_urgent_one_is_emailed_too() -> None:
    urgent = sample(ConcernRaised)
    routine = urgent.model_copy(update={"level": ConcernLevel.ROUTINE})
    assert summary(messages(routine)) == [("concern_raised", "agency", REFERRER, "webhook")]
    emails = [r for r in messages(urgent) if r.recipient.channel is ChannelKind.EMAIL]
    assert {r.recipient.endpoint for r in emails} == {
        f"{REFERRER}@agencies.example.org",
        "coordinator@circles.example.org",
    }
    coordinator = next(r for r in emails if r.recipient.kind == "coordinator")
    assert coordinator.context.link == f"https://coordinator.circles.example.org/circles/{urgent.circle_id}"
    agency_mail = next(r for r in emails if r.recipient.kind == "agency")
    assert agency_mail.context.link == f"https://api.circles.example.org/v1/concerns/{urgent.concern_id}"
    # the agency is asked to acknowledge it; the coordinator, who cannot, is told the agency must
    for event in (urgent, sample(ConcernEscalated)):
        told = {
            r.recipient.kind: render(r.template, r.context)
            for r in messages(event)
            if r.recipient.channel is ChannelKind.EMAIL
        }
        for rendered in (told["agency"].text, told["agency"].html):
            assert "Read it and acknowledge it at the link below" in rendered
        for rendered in (told["coordinator"].text, told["coordinator"].html):
            assert "acknowledge it at the link" not in rendered
            assert "The referring agency must acknowledge it (the coordinator cannot)" in rendered


def test_a_concern_webhook_carries_its_id_level_and_link_never_its_text() -> None:
    for event in (sample(ConcernRaised), sample(ConcernEscalated)):
        requests = messages(event)
        body = _webhook(requests)
        assert set(body) == {
            "event_id",
            "event_type",
            "occurred_at",
            "referral_id",
            "agency_reference",
            "status",
            "reason_codes",
            "link",
            "circle_id",
            "concern_id",
            "level",
        }
        assert body["concern_id"] == str(CONCERN_ID) and body["level"] == "urgent"
        assert body["link"] == f"https://api.circles.example.org/v1/concerns/{CONCERN_ID}"
        assert body["circle_id"] == event.circle_id and body["status"] == "circle_formed"
        for request in requests:
            rendered = render(request.template, request.context)
            assert str(CONCERN_ID) in rendered.text
            for text in (rendered.subject, rendered.text, rendered.html, json.dumps(body)):
                assert SUMMARY_SENTINEL not in text and MINUTES_SENTINEL not in text


def test_circle_events_say_status_dates_and_outcome() -> None:
    ended = _webhook(messages(sample(CircleEnded)))
    assert ended["event_type"] == "circle_ended" and ended["status"] == "circle_ended"
    assert ended["reason_codes"] == ["completed"]
    early = sample(CircleEnded).model_copy(
        update={"outcome": CircleOutcome.ENDED_EARLY, "reason": EndReason.MOVED_AWAY}
    )
    assert _webhook(messages(early))["reason_codes"] == ["ended_early", "moved_away"]
    assert "moved away" in render("circle_ended", messages(early)[0].context).text
    review = _webhook(messages(sample(ReviewRecorded)))
    assert review["next_review_due"] == "2027-02-23" and "reassess_on" not in review
    meeting = _webhook(messages(sample(MeetingRecorded)))
    assert meeting["link"] == f"https://api.circles.example.org/v1/referrals/{meeting['referral_id']}"
    assert "concern_id" not in meeting


def test_circle_messages_carry_the_agency_reference_when_known() -> None:
    event = sample(MeetingRecorded)
    known = ReferralProgress(
        referral_id=event.referral_id, agency_id=event.agency_id, agency_reference="MAPPA-2026-0999"
    )
    requests = route(envelope_for(event), event, AGENCIES, CONFIG, known)
    assert _webhook(requests)["agency_reference"] == known.agency_reference


def test_an_agency_without_a_webhook_hears_of_a_circle_only_by_urgent_email() -> None:
    email_only = {REFERRER: agency(REFERRER, AgencyKind.MAPPA, [], webhook=False)}
    assert messages(sample(MeetingRecorded), email_only) == []
    assert summary(messages(sample(ConcernEscalated), email_only)) == [
        ("concern_escalated", "agency", REFERRER, "email"),
        ("concern_escalated", "coordinator", "coordinator", "email"),
    ]
