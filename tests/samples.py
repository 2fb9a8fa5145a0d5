"""Synthetic, obviously invented data for tests: never a real person.

``sample_event(type)`` gives one valid instance of every event type; a test checks there is one for each
type in the catalogue, so a new event cannot be added without a sample.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from schemas.common import AgeBand, Gender, LocalAuthority, Outcome, Reason, RiskLevel
from schemas.envelope import Envelope, Event
from schemas.events.accounts import SessionEnded
from schemas.events.agencies import AgencyKeyRotated, AgencyKind, AgencyRecord, AgencyRegistered, ApiKeyHash
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleEnded,
    CircleExtended,
    CircleOutcome,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    CoreMemberAttendance,
    EndCircle,
    EndReason,
    ExtendCircle,
    MeetingRecorded,
    MinutesOverdue,
    MinutesSubmitted,
    RaiseConcern,
    RecordMeeting,
    RecordReview,
    ReviewRecorded,
    SubmitMinutes,
    circle_id_of,
)
from schemas.events.coordinator import (
    AuditRecorded,
    CoordinatorAccount,
    CoordinatorAccountSet,
    MappaPanelRecorded,
    MentoringSessionRecorded,
    PasswordHash,
)
from schemas.events.matching import (
    ChosenVolunteer,
    CircleFormed,
    MatchDecided,
    MatchDeferred,
    MatchProposed,
    PassedOver,
    ProposalCancelled,
    ReminderKind,
    VolunteerReminderDue,
)
from schemas.events.notifications import (
    ChannelKind,
    DeliveryRetryDue,
    NotificationContext,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationRequested,
    Recipient,
)
from schemas.events.referrals import (
    EraseReferral,
    InboundSubmission,
    NeedsProfile,
    ReassessReferral,
    ReferralAccessed,
    ReferralAssessed,
    ReferralErased,
    ReferralProfile,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmitReferral,
    WithdrawReferral,
)
from schemas.events.volunteers import (
    ChangeVolunteer,
    Conflict,
    VolunteerAvailabilityChanged,
    VolunteerConflictDeclared,
    VolunteerRecord,
    VolunteerRegistered,
    VolunteerSupervised,
    VolunteerTrained,
    VolunteerVetted,
    VolunteerWithdrawn,
)
from schemas.partner_api import Decision, ReferralSubmission
from schemas.topics import EVENT_TYPES
from services.dev.seed import with_changes

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
E = TypeVar("E", bound=Event)
REFERRAL_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
PROPOSAL_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")


MINUTES_SENTINEL = "Invented minutes of a synthetic circle meeting"
SUMMARY_SENTINEL = "Invented summary of a synthetic concern"
PERSONAL_SENTINELS = (
    "Testy",
    "Fictionalperson",
    "1979-03-02",
    "2004/0123456X",
    "Ada Placeholder",
    "ada.placeholder@example.org",
    "01482 000000",
    "Invented notes for a synthetic test referral",
    MINUTES_SENTINEL,
    SUMMARY_SENTINEL,
)
"""The distinctive personal values of ``submission_body()``: none may appear in any log or message."""


def submission_body(**overrides: Any) -> dict[str, Any]:
    """A valid partner submission as JSON, for an invented core member."""
    body: dict[str, Any] = {
        "agency_reference": "MAPPA-2026-0142",
        "referrer": {
            "name": "Ada Placeholder",
            "role": "MAPPA coordinator",
            "email": "ada.placeholder@example.org",
            "phone": "01482 000000",
        },
        "core_member": {
            "given_name": "Testy",
            "family_name": "Fictionalperson",
            "date_of_birth": "1979-03-02",
            "gender": "male",
            "pnc_number": "2004/0123456X",
            "local_authority": "hull",
            "postcode_district": "HU5",
        },
        "offence": {
            "sexual_offence": True,
            "registered_sex_offender": True,
            "mappa_category": 1,
            "mappa_level": 2,
        },
        "risk": {"level": "high", "tool": "OASys"},
        "custody": {"in_custody": True, "establishment": "HMP Hull", "expected_release_date": "2027-01-15"},
        "consent": {"given": True, "date": "2026-11-01"},
        "needs": {"learning_disability": False, "mental_health": False, "interpreter_language": None},
        "exclusion_zones": ["HU3"],
        "notes": "Invented notes for a synthetic test referral.",
    }
    return with_changes(body, overrides)


def submission(**overrides: Any) -> ReferralSubmission:
    return ReferralSubmission.model_validate(submission_body(**overrides))


def profile() -> ReferralProfile:
    return ReferralProfile(
        local_authority=LocalAuthority.HULL,
        postcode_district="HU5",
        gender=Gender.MALE,
        age_band=AgeBand.FROM_45_TO_54,
        risk_level=RiskLevel.HIGH,
        mappa_category=1,
        mappa_level=2,
        in_custody=True,
        expected_release_date=date(2027, 1, 15),
        needs=NeedsProfile(learning_disability=False, mental_health=False, interpreter_language=None),
        exclusion_zones=["HU3"],
    )


def volunteer_record(volunteer_id: str = "vol-001", **overrides: Any) -> VolunteerRecord:
    values: dict[str, Any] = {
        "volunteer_id": volunteer_id,
        "name": f"Volunteer {volunteer_id} (synthetic)",
        "gender": Gender.FEMALE,
        "local_authority": LocalAuthority.HULL,
        "postcode_district": "HU7",
        "experienced": True,
        "skills": ["learning-disability"],
        "max_circles": 2,
        "availability": ["mon-eve", "sat-am"],
        "dbs_checked_on": date(2025, 6, 1),
        "trained_on": date(2025, 7, 1),
        "last_supervised_on": date(2026, 11, 1),
        "conflicts": [],
        "registered_on": date(2025, 5, 1),
    }
    values.update(overrides)
    return VolunteerRecord.model_validate(values)


def agency_record(agency_id: str = "mappa-humberside") -> AgencyRecord:
    return AgencyRecord(
        agency_id=agency_id,
        name="Humberside MAPPA (synthetic)",
        kind=AgencyKind.MAPPA,
        local_authorities=[LocalAuthority.HULL],
        contact_email="mappa.unit@example.org",
        webhook_url="http://127.0.0.1:9/webhooks",
        webhook_secret="synthetic-secret",
        api_key=ApiKeyHash(key_id="k1", salt="00", sha256="ab" * 32, created_at=NOW),
        registered_at=NOW,
        updated_at=NOW,
    )


def decision() -> Decision:
    return Decision(
        outcome=Outcome.ELIGIBLE, reasons=[], policy_version="test-1", decided_at=NOW, reassess_on=None
    )


def _samples() -> dict[type[Event], Event]:
    volunteer = volunteer_record()
    agency = agency_record()
    referral = {"referral_id": REFERRAL_ID, "agency_id": "mappa-humberside"}
    delivery = {
        "notification_id": PROPOSAL_ID,
        "referral_id": REFERRAL_ID,
        "channel": ChannelKind.EMAIL,
        "recipient_id": "mappa-humberside",
        "attempts": 1,
    }
    samples: list[Event] = [
        AgencyRegistered(agency=agency),
        CoordinatorAccountSet(
            account=CoordinatorAccount(
                account_id="coordinator",
                display_name="Synthetic Coordinator",
                password=PasswordHash(n=16384, r=8, p=1, salt="00", hash="ab" * 32),
                created_at=NOW,
                updated_at=NOW,
            )
        ),
        AgencyKeyRotated(agency=agency),
        SessionEnded(
            account_kind="coordinator",
            account_id="coordinator",
            session="cd" * 32,
            ended_at=NOW,
            expires_at=NOW,
        ),
        InboundSubmission.model_validate(submission_body()),
        SubmitReferral(
            referral_id=REFERRAL_ID,
            agency_id="mappa-humberside",
            submission=submission(),
            fingerprint="f" * 64,
            received_at=NOW,
        ),
        WithdrawReferral(
            referral_id=REFERRAL_ID, agency_id="mappa-humberside", reason="moved", received_at=NOW
        ),
        ReassessReferral(referral_id=REFERRAL_ID, as_of=date(2026, 12, 1)),
        EraseReferral(
            referral_id=REFERRAL_ID, reason="request", requested_by="coordinator", requested_at=NOW
        ),
        ReferralSubmitted(
            **referral,
            agency_reference="MAPPA-2026-0142",
            version=1,
            submitted_at=NOW,
            profile=profile(),
            detail_url="http://127.0.0.1/v1/referrals/x",
        ),
        ReferralAssessed(
            **referral, agency_reference="MAPPA-2026-0142", version=1, decision=decision(), profile=profile()
        ),
        ReferralWithdrawn(**referral, agency_reference="MAPPA-2026-0142", version=1, withdrawn_at=NOW),
        ReferralErased(
            **referral,
            agency_reference="MAPPA-2026-0142",
            erased_at=NOW,
            reason="retention",
            requested_by="circles retention apply",
        ),
        ReferralAccessed(
            actor="agency:mappa-humberside",
            action="get",
            referral_ids=[REFERRAL_ID],
            status=200,
            accessed_at=NOW,
        ),
        ChangeVolunteer(
            volunteer_id="vol-001", change="vetted", on=date(2026, 11, 1), requested_by="coordinator"
        ),
        VolunteerRegistered(volunteer=volunteer),
        VolunteerVetted(volunteer=volunteer),
        VolunteerTrained(volunteer=volunteer),
        VolunteerSupervised(volunteer=volunteer),
        VolunteerAvailabilityChanged(volunteer=volunteer),
        VolunteerConflictDeclared(
            volunteer=volunteer.model_copy(
                update={
                    "conflicts": [
                        Conflict(postcode_district="HU3", reason="lives there", declared_on=NOW.date())
                    ]
                }
            )
        ),
        VolunteerWithdrawn(volunteer=volunteer.model_copy(update={"withdrawn_on": NOW.date()})),
        MatchProposed(
            **referral,
            proposal_id=PROPOSAL_ID,
            attempt=1,
            volunteers=[
                ChosenVolunteer(volunteer_id="vol-001", reasons=[Reason(code="vetted", message="in date")])
            ],
            passed_over=[PassedOver(volunteer_id="vol-009", reasons=[Reason(code="held", message="held")])],
            flags=[],
            score=1.5,
            risk_level=RiskLevel.HIGH,
            policy_version="test-1",
            proposed_at=NOW,
        ),
        MatchDeferred(
            **referral,
            reasons=[Reason(code="too_few_volunteers", message="2 of 4")],
            policy_version="test-1",
            deferred_at=NOW,
        ),
        ProposalCancelled(**referral, proposal_id=PROPOSAL_ID, reason="referral_withdrawn", cancelled_at=NOW),
        MatchDecided(
            **referral,
            decision_id=uuid.uuid4(),
            proposal_id=PROPOSAL_ID,
            outcome="accept",
            decided_by="coordinator",
            decided_at=NOW,
        ),
        CircleFormed(
            **referral,
            circle_id=uuid.uuid4(),
            proposal_id=PROPOSAL_ID,
            volunteer_ids=["vol-001"],
            local_authority=LocalAuthority.HULL,
            formed_at=NOW,
            year=2026,
            circles_formed_in_year=1,
            yearly_target=8,
        ),
        VolunteerReminderDue(
            volunteer_id="vol-001",
            kind=ReminderKind.DBS_EXPIRING,
            due_on=date(2027, 1, 1),
            days_left=30,
            raised_on=NOW.date(),
        ),
        NotificationRequested(
            notification_id=PROPOSAL_ID,
            cause_event_id=uuid.uuid4(),
            cause_event_type=ReferralSubmitted.event_type,
            template="referral_received",
            recipient=Recipient(
                kind="agency",
                id="mappa-humberside",
                channel=ChannelKind.EMAIL,
                endpoint="mappa.unit@example.org",
            ),
            context=NotificationContext(referral_id=REFERRAL_ID, status="received"),
            requested_at=NOW,
        ),
        *_circle_samples(),
        DeliveryRetryDue(notification_id=PROPOSAL_ID, attempt=2),
        NotificationDelivered(**delivery, delivered_at=NOW),
        NotificationDeadLettered(**delivery, reason="SMTP 550", dead_lettered_at=NOW),
        MappaPanelRecorded(
            panel_id=PROPOSAL_ID,
            referral_id=REFERRAL_ID,
            level=2,
            held_on=NOW.date(),
            attended=True,
            recorded_by="cli:coordinator",
            recorded_at=NOW,
        ),
        MentoringSessionRecorded(
            session_id=PROPOSAL_ID,
            referral_id=REFERRAL_ID,
            held_on=NOW.date(),
            minutes=60,
            recorded_by="cli:coordinator",
            recorded_at=NOW,
        ),
        AuditRecorded(
            audit_id=PROPOSAL_ID,
            held_on=NOW.date(),
            area="supervision",
            result="actions",
            actions=2,
            recorded_by="cli:coordinator",
            recorded_at=NOW,
        ),
    ]
    return {type(sample): sample for sample in samples}


MEETING_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
CONCERN_ID = uuid.UUID("00000000-0000-4000-8000-000000000004")


def _circle_samples() -> list[Event]:
    command = {
        "command_id": uuid.UUID("00000000-0000-4000-8000-000000000005"),
        "referral_id": REFERRAL_ID,
        "requested_by": "cli:tester",
        "requested_at": NOW,
    }
    fact = {
        "referral_id": REFERRAL_ID,
        "circle_id": circle_id_of(REFERRAL_ID),
        "agency_id": "mappa-humberside",
    }
    held_on = date(2026, 11, 23)
    return [
        RecordMeeting(
            **command,
            meeting_id=MEETING_ID,
            held_on=held_on,
            core_member_attendance=CoreMemberAttendance.ATTENDED,
            volunteer_ids=["vol-001"],
            minutes=MINUTES_SENTINEL,
        ),
        SubmitMinutes(**command, meeting_id=MEETING_ID, minutes=MINUTES_SENTINEL),
        RaiseConcern(
            **command,
            concern_id=CONCERN_ID,
            level=ConcernLevel.URGENT,
            summary=SUMMARY_SENTINEL,
            raised_by="vol-001",
        ),
        AcknowledgeConcern(**command, concern_id=CONCERN_ID, agency_id="mappa-humberside", note="passed on"),
        RecordReview(**command, review_id=uuid.UUID("00000000-0000-4000-8000-000000000006"), held_on=held_on),
        ExtendCircle(**command, months=3),
        EndCircle(
            **command, outcome=CircleOutcome.ENDED_EARLY, reason=EndReason.MOVED_AWAY, ended_on=held_on
        ),
        CircleActivated(
            **fact,
            formed_on=date(2026, 11, 1),
            volunteer_ids=["vol-001"],
            local_authority=LocalAuthority.HULL,
            planned_end_on=date(2027, 11, 1),
            next_review_due=date(2027, 2, 1),
            activated_at=NOW,
        ),
        MeetingRecorded(
            **fact,
            meeting_id=MEETING_ID,
            held_on=held_on,
            core_member_attendance=CoreMemberAttendance.LATE,
            volunteer_ids=["vol-001"],
            minutes_due_at=NOW,
            minutes_received=False,
            recorded_at=NOW,
        ),
        MinutesSubmitted(**fact, meeting_id=MEETING_ID, submitted_at=NOW, on_time=True),
        MinutesOverdue(**fact, meeting_id=MEETING_ID, held_on=held_on, minutes_due_at=NOW, noticed_at=NOW),
        ConcernRaised(
            **fact,
            concern_id=CONCERN_ID,
            level=ConcernLevel.URGENT,
            raised_at=NOW,
            raised_by="vol-001",
            escalation_due_at=NOW,
        ),
        ConcernAcknowledged(
            **fact,
            concern_id=CONCERN_ID,
            level=ConcernLevel.URGENT,
            acknowledged_at=NOW,
            acknowledged_by="mappa-humberside",
            raised_at=NOW,
        ),
        ConcernEscalated(
            **fact, concern_id=CONCERN_ID, level=ConcernLevel.URGENT, raised_at=NOW, escalated_at=NOW
        ),
        ReviewRecorded(
            **fact,
            review_id=uuid.UUID("00000000-0000-4000-8000-000000000006"),
            held_on=held_on,
            next_review_due=date(2027, 2, 23),
        ),
        CircleExtended(**fact, months=3, planned_end_on=date(2028, 2, 1), extended_at=NOW),
        CircleEnded(
            **fact,
            outcome=CircleOutcome.COMPLETED,
            reason=None,
            ended_on=held_on,
            volunteer_ids=["vol-001"],
            ended_at=NOW,
        ),
    ]


SAMPLES = _samples()


def sample(kind: type[E]) -> E:
    """The sample of one event class, typed as that class."""
    value = SAMPLES[kind]
    assert isinstance(value, kind)
    return value


def sample_event(event_type: str) -> Event:
    return SAMPLES[EVENT_TYPES[event_type]]


def inbound_record(
    agency_id: str, signing_key: str | None, body: dict[str, Any], correlation_id: str
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of an inbound submission as an agency system writes it: CloudEvents headers
    naming ``agency_id`` in ``ce_source``, signed with ``signing_key`` (None: unsigned). ``body`` need not be
    valid: the value is its JSON as given."""
    from services.referrals.domain.inbound_signature import signed_headers

    envelope = Envelope(
        id=uuid.uuid4(),
        type=InboundSubmission.event_type,
        source=f"/agencies/{agency_id}",
        time=datetime.now(UTC),
        correlationid=correlation_id,
        subject=str(body.get("agency_reference", "")) or None,
    )
    value = json.dumps(body, ensure_ascii=False).encode()
    headers = envelope.headers()
    if signing_key is not None:
        headers = signed_headers(signing_key, headers, value)
    return str(body.get("agency_reference", "")).encode(), value, headers
