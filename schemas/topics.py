"""The topic catalogue: every topic, its key, partitions, cleanup policy, owner, consumers and events.

One list, so the event flow is visible at a glance (after Confluent's ``Schemas.Topics``). Each topic has
one writing service (single-writer principle). Topics whose events share a key share a partition count,
so that a worker holds the same partitions of each, and of the tables keyed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.envelope import Event
from schemas.events.accounts import SessionEnded
from schemas.events.agencies import AgencyKeyRotated, AgencyRegistered
from schemas.events.circles import (
    CIRCLE_COMMANDS,
    CIRCLE_FACTS,
    CircleEnded,
)
from schemas.events.coordinator import (
    AuditRecorded,
    CoordinatorAccountSet,
    MappaPanelRecorded,
    MentoringSessionRecorded,
    VolunteerAccountSet,
)
from schemas.events.matching import (
    CircleFormed,
    MatchDecided,
    MatchDeferred,
    MatchProposed,
    ProposalCancelled,
    VolunteerReminderDue,
)
from schemas.events.notifications import (
    DeliveryRetryDue,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationRequested,
)
from schemas.events.referrals import (
    EraseReferral,
    InboundSubmission,
    ReassessReferral,
    ReferralAccessed,
    ReferralAssessed,
    ReferralErased,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmitReferral,
    WithdrawReferral,
)
from schemas.events.volunteers import (
    ChangeVolunteer,
    VolunteerAvailabilityChanged,
    VolunteerConflictDeclared,
    VolunteerRegistered,
    VolunteerSupervised,
    VolunteerTrained,
    VolunteerVetted,
    VolunteerWithdrawn,
)

REFERRAL_PARTITIONS = 6
"""Partitions of every topic keyed by referral id (and of the notification topics): the most workers
one service can spread over."""

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


class CliAccess(StrEnum):
    """What the ``circles`` command (its own Kafka principal) does with a topic, besides the owner's and the
    consumers' processes: registries and the coordinator's commands are written from the command line."""

    NONE = "none"
    READ = "read"
    WRITE = "write"
    """Reads it, and writes it as a front end of the owner, beside the owner's own processes (its API)."""
    ONLY_WRITER = "only-writer"
    """Reads it and is its only writer: the owner's processes only read it (a registry)."""


class Service(StrEnum):
    REFERRALS = "referrals"
    MATCHING = "matching"
    NOTIFICATIONS = "notifications"
    COORDINATOR = "coordinator"
    CIRCLES = "circles"
    PARTNER_AGENCIES = "partner-agencies"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    owner: Service
    key: str
    partitions: int
    cleanup: Cleanup
    description: str
    events: tuple[type[Event], ...] = ()
    consumers: tuple[Service, ...] = ()
    cli: CliAccess = CliAccess.NONE
    retention_ms: int = -1
    segment_ms: int | None = None
    personal_data: bool = False
    dead_letter: bool = False
    holds_keys: bool = False
    writers: tuple[Service, ...] = ()
    """Services that write it besides its owner, as front ends of the owner (the partner API writes an
    agency's acknowledgement of a concern to the circles service's commands)."""
    purged_by_consumers: bool = False
    """Its consumers delete the records they have committed past (DeleteRecords): plain personal data."""

    @property
    def config(self) -> dict[str, str]:
        """Kafka topic configuration, as given to the admin client when the topic is created."""
        settings = {"cleanup.policy": self.cleanup.value, "retention.ms": str(self.retention_ms)}
        if self.segment_ms is not None:
            settings["segment.ms"] = str(self.segment_ms)
        if self.cleanup is Cleanup.COMPACT:
            settings |= {"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(DAY_MS)}
        if self.holds_keys:  # a destroyed key must leave the log soon: small segments, eager compaction
            settings |= {
                "min.cleanable.dirty.ratio": "0.01",
                "segment.ms": str(HOUR_MS),
                "max.compaction.lag.ms": str(DAY_MS),
                "delete.retention.ms": str(DAY_MS),
            }
        return settings

    @property
    def dlq(self) -> str:
        return dead_letter_topic(self.name)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def _keys_topic(
    name: str,
    owner: Service,
    subjects: str,
    cli: CliAccess = CliAccess.NONE,
    readers: tuple[Service, ...] = (),
) -> TopicSpec:
    """``cli``: where the ``circles`` command seals these subjects' personal fields, it writes (and reads)
    their data keys too; ``ONLY_WRITER`` when only the command seals them, so the owner only opens."""
    return TopicSpec(
        name=name,
        owner=owner,
        key="data key id",
        partitions=1,
        cleanup=Cleanup.COMPACT,
        description=(
            f"Private: the data keys sealing the personal fields of {subjects}, wrapped by the "
            "key-encryption key. A tombstone destroys a key, and with it those fields everywhere."
        ),
        consumers=(owner, *readers),
        cli=cli,
        holds_keys=True,
    )


def _sessions_topic(name: str, kind: str, page: str) -> TopicSpec:
    """Sessions of one account kind ended before their expiry, which every process of its page reads."""
    return TopicSpec(
        name=name,
        owner=Service.COORDINATOR,
        key="session",
        partitions=1,
        cleanup=Cleanup.DELETE,
        retention_ms=2 * DAY_MS,  # longer than any session lives (at most 24 hours)
        segment_ms=HOUR_MS,
        description=(
            f"Private: {kind} sessions ended before their expiry (signed out), by a digest of the session "
            f"id; every {page} process reads it whole (no consumer group) and refuses them."
        ),
        events=(SessionEnded,),
    )


REFERRAL_KEYS = _keys_topic(
    "circles.referrals.keys.v1",
    Service.REFERRALS,
    "referrals (subjects referral:<id>), and their circles' minutes and concern summaries",
    # the circles service, `circles circle meeting|minutes|concern` and the coordinator's pages (the minutes
    # and summaries a volunteer or the coordinator types) seal minutes and concern summaries with the
    # referral's key (which exists from the submission on; erasure destroys it; the pages only read it: a
    # referral without its key was erased, and its circle takes nothing more)
    cli=CliAccess.WRITE,
    readers=(Service.CIRCLES, Service.COORDINATOR),
)
VOLUNTEER_KEYS = _keys_topic(
    "circles.volunteers.keys.v1",
    Service.MATCHING,
    "volunteers (volunteer:<id>) and the coordinator's decision notes (decision:<referral id>)",
    cli=CliAccess.WRITE,  # `circles volunteer ...` and `circles proposal ...` seal and open with them
)
COORDINATOR_KEYS = _keys_topic(
    "circles.coordinator.keys.v1",
    Service.COORDINATOR,
    "coordinator accounts (coordinator:<id>)",
    cli=CliAccess.ONLY_WRITER,  # `circles coordinator add` seals account names; the page only opens them
)
SUBJECT_KEYS: dict[str, TopicSpec] = {
    "referral": REFERRAL_KEYS,
    "inbound": REFERRAL_KEYS,  # a dead-lettered inbound submission (plain personal data from an agency)
    "volunteer": VOLUNTEER_KEYS,
    "decision": VOLUNTEER_KEYS,  # the coordinator's notes on a referral's proposals (matching's own keys)
    "coordinator": COORDINATOR_KEYS,
}
"""Subject kind (the part of ``Event.data_subject()`` before the colon) → the topic holding its data keys."""

AGENCIES = TopicSpec(
    name="circles.agencies.v1",
    owner=Service.REFERRALS,
    key="agency_id",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description="Partner agency registry: the latest record of each agency (key hash, contact, webhook).",
    events=(AgencyRegistered, AgencyKeyRotated),
    consumers=(Service.REFERRALS, Service.NOTIFICATIONS),
    cli=CliAccess.ONLY_WRITER,  # `circles agency add|rotate-key`
)
REFERRALS_INBOUND = TopicSpec(
    name="circles.referrals.inbound.v1",
    owner=Service.PARTNER_AGENCIES,
    key="agency_reference",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    segment_ms=HOUR_MS,
    description=(
        "Submissions produced by agency systems that prefer Kafka to HTTP; validated like a POST. Each is "
        "signed with its agency's Kafka signing key (header circles-signature: HMAC-SHA256 over ce_id, "
        "ce_source, ce_type, ce_time and the value's SHA-256; see docs/architecture.md), or dead-lettered. "
        "Plain personal data: the referrals worker deletes each record once it has committed past it."
    ),
    events=(InboundSubmission,),
    consumers=(Service.REFERRALS,),
    personal_data=True,
    purged_by_consumers=True,
)
REFERRALS_COMMANDS = TopicSpec(
    name="circles.referrals.commands.v1",
    owner=Service.REFERRALS,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    description="Private: accepted submissions, amendments, withdrawals and re-assessments, to the worker.",
    events=(SubmitReferral, WithdrawReferral, ReassessReferral, EraseReferral),
    consumers=(Service.REFERRALS,),
    personal_data=True,
)
REFERRALS_STATE = TopicSpec(
    name="circles.referrals.state.v1",
    owner=Service.REFERRALS,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description="Private: the referrals worker's table of referral records (changelog), read by its API.",
    consumers=(Service.REFERRALS,),
    personal_data=True,
)
REFERRALS_CIRCLES = TopicSpec(
    name="circles.referrals.circles.v1",
    owner=Service.REFERRALS,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description=(
        "Private: the referrals worker's table of its referrals' circles (changelog), read by its API: built "
        "from the circles facts, with each concern's summary (from the circles commands) sealed under the "
        "referral's key for the owning agency."
    ),
    consumers=(Service.REFERRALS,),
    personal_data=True,
)
REFERRAL_EVENTS = TopicSpec(
    name="circles.referrals.events.v1",
    owner=Service.REFERRALS,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
    description="Minimised referral events for other services: submitted, assessed, withdrawn, erased.",
    events=(ReferralSubmitted, ReferralAssessed, ReferralWithdrawn, ReferralErased),
    consumers=(Service.MATCHING, Service.NOTIFICATIONS, Service.COORDINATOR, Service.CIRCLES),
)
REFERRAL_ACCESS = TopicSpec(
    name="circles.referrals.access.v1",
    owner=Service.REFERRALS,
    key="actor",
    partitions=3,
    cleanup=Cleanup.DELETE,
    description=(
        "The access log: who read or changed which referrals, when, and what they were answered (every "
        "partner API request about referrals, every erasure). Ids only; kept without a time limit, so that "
        "an access can be checked for as long as anything of the referral exists. Read by `circles audit`."
    ),
    events=(ReferralAccessed,),
)
VOLUNTEERS = TopicSpec(
    name="circles.volunteers.v1",
    owner=Service.MATCHING,
    key="volunteer_id",
    partitions=3,
    cleanup=Cleanup.COMPACT,
    description="Volunteer records: each event carries the whole record after the change.",
    events=(
        VolunteerRegistered,
        VolunteerVetted,
        VolunteerTrained,
        VolunteerSupervised,
        VolunteerAvailabilityChanged,
        VolunteerConflictDeclared,
        VolunteerWithdrawn,
    ),
    consumers=(Service.MATCHING,),
    cli=CliAccess.READ,  # `circles volunteer list`, and the outcome of volunteer commands
    personal_data=True,
)
VOLUNTEER_COMMANDS = TopicSpec(
    name="circles.volunteers.commands.v1",
    owner=Service.MATCHING,
    key="volunteer_id",
    partitions=3,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    description="Private: the coordinator's changes to volunteer records (CLI, page), applied one at a time.",
    events=(ChangeVolunteer,),
    consumers=(Service.MATCHING,),
    cli=CliAccess.WRITE,  # `circles volunteer ...` (and the matching API)
    personal_data=True,
)
VOLUNTEER_RECORDS = TopicSpec(
    name="circles.volunteers.records.v1",
    owner=Service.MATCHING,
    key="volunteer_id",
    partitions=3,
    cleanup=Cleanup.COMPACT,
    description="Private: the volunteer records table (record, recently applied commands): a changelog.",
    consumers=(Service.MATCHING,),
    personal_data=True,
)
MATCH_DECISIONS = TopicSpec(
    name="circles.matching.decisions.v1",
    owner=Service.MATCHING,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
    description="The coordinator's accept/reject decisions, from the CLI or the coordinator page.",
    events=(MatchDecided,),
    consumers=(Service.MATCHING,),
    cli=CliAccess.WRITE,  # `circles proposal accept|reject` (and the matching API)
    personal_data=True,  # the coordinator's free-text note, sealed
)
MATCHING_INBOX = TopicSpec(
    name="circles.matching.inbox.v1",
    owner=Service.MATCHING,
    key="referral_id or volunteer_id",
    partitions=1,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    description=(
        "Private: every input of the matcher in one partition, because the volunteer pool is one "
        "allocation problem with a single writer (no volunteer in two open proposals)."
    ),
    events=(
        ReferralAssessed,
        ReferralWithdrawn,
        ReferralErased,
        MatchDecided,
        CircleEnded,
        *VOLUNTEERS.events,
    ),
    consumers=(Service.MATCHING,),
    personal_data=True,
)
MATCHING_CASES = TopicSpec(
    name="circles.matching.cases.v1",
    owner=Service.MATCHING,
    key="referral_id",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description="Private: the matcher's referral cases (profile, proposals, decisions, circle): a changelog.",
    consumers=(Service.MATCHING,),
    cli=CliAccess.READ,  # `circles volunteer list`, `circles proposal list`
    personal_data=True,  # the coordinator's notes on proposals, sealed
)
MATCHING_POOL = TopicSpec(
    name="circles.matching.pool.v1",
    owner=Service.MATCHING,
    key="volunteer_id",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description="Private: the volunteer pool as the matcher has seen it, in inbox order, as a changelog.",
    consumers=(Service.MATCHING,),
    personal_data=True,
)
MATCHING_EVENTS = TopicSpec(
    name="circles.matching.events.v1",
    owner=Service.MATCHING,
    key="referral_id (volunteer_id for reminders)",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
    description="Proposals, deferrals, cancellations, circles formed and volunteer reminders.",
    events=(MatchProposed, MatchDeferred, ProposalCancelled, CircleFormed, VolunteerReminderDue),
    consumers=(Service.REFERRALS, Service.NOTIFICATIONS, Service.COORDINATOR, Service.CIRCLES),
    cli=CliAccess.READ,  # the outcome of `circles proposal accept|reject`
)
NOTIFICATION_REQUESTS = TopicSpec(
    name="circles.notifications.requests.v1",
    owner=Service.NOTIFICATIONS,
    key="notification_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    description="One message to one recipient, decided by routing; and the retries of failed ones.",
    events=(NotificationRequested, DeliveryRetryDue),
    consumers=(Service.NOTIFICATIONS,),
)
NOTIFICATION_LOG = TopicSpec(
    name="circles.notifications.log.v1",
    owner=Service.NOTIFICATIONS,
    key="notification_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description="Private: the delivery log (pending, sent, failed with attempts, dead) as a changelog.",
    consumers=(Service.NOTIFICATIONS,),
    cli=CliAccess.READ,  # `circles notifications status`
)
NOTIFICATION_PROGRESS = TopicSpec(
    name="circles.notifications.progress.v1",
    owner=Service.NOTIFICATIONS,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description=(
        "Private: each referral's progress as the notifications service follows it (statuses, service-level "
        "clocks, escalations sent), as a changelog; read whole for the coordinator's daily digest."
    ),
    consumers=(Service.NOTIFICATIONS,),
)
NOTIFICATION_EVENTS = TopicSpec(
    name="circles.notifications.events.v1",
    owner=Service.NOTIFICATIONS,
    key="notification_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
    description="What became of each message: delivered, or dead-lettered with the reason.",
    events=(NotificationDelivered, NotificationDeadLettered),
    consumers=(Service.COORDINATOR,),
)

COORDINATOR_ACCOUNTS = TopicSpec(
    name="circles.coordinator.accounts.v1",
    owner=Service.COORDINATOR,
    key="account_id",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description="Coordinator accounts for the coordinator page (scrypt password hashes only).",
    events=(CoordinatorAccountSet,),
    consumers=(Service.COORDINATOR,),
    cli=CliAccess.ONLY_WRITER,  # `circles coordinator add`
    personal_data=True,
)

COORDINATOR_SESSIONS = _sessions_topic("circles.coordinator.sessions.v1", "coordinator", "coordinator page")

VOLUNTEER_ACCOUNTS = TopicSpec(
    name="circles.coordinator.volunteer-accounts.v1",
    owner=Service.COORDINATOR,
    key="volunteer_id",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description=(
        "Volunteer accounts for the volunteers' page (volunteer id and scrypt password hash only), created "
        "by the coordinator from the command line or the coordinator page."
    ),
    events=(VolunteerAccountSet,),
    consumers=(Service.COORDINATOR,),
    cli=CliAccess.WRITE,  # `circles volunteer account add`, beside the coordinator page
)
VOLUNTEER_SESSIONS = _sessions_topic(
    "circles.coordinator.volunteer-sessions.v1", "volunteer", "volunteers' page"
)

COORDINATOR_REFERRALS = TopicSpec(
    name="circles.coordinator.referrals.v1",
    owner=Service.COORDINATOR,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description="Private: the coordinator's facts about each referral (status and timings), as a changelog.",
    consumers=(Service.COORDINATOR,),
    cli=CliAccess.READ,  # `circles mappa panel|mentoring session` check the referral is one it knows
)
COORDINATOR_DEAD_LETTERS = TopicSpec(
    name="circles.coordinator.dead-letters.v1",
    owner=Service.COORDINATOR,
    key="notification_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description="Private: messages that could not be delivered, for the coordinator and the report.",
    consumers=(Service.COORDINATOR,),
)
COORDINATOR_CIRCLES = TopicSpec(
    name="circles.coordinator.circles.v1",
    owner=Service.COORDINATOR,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description=(
        "Private: the coordinator's view of each circle after formation (meetings, minutes status, reviews, "
        "concerns, ending) from the circles facts, as a changelog; read whole by the coordinator's and the "
        "volunteers' pages. Ids, dates and states only."
    ),
    consumers=(Service.COORDINATOR,),
)
CIRCLES_COMMANDS = TopicSpec(
    name="circles.circles.commands.v1",
    owner=Service.CIRCLES,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=7 * DAY_MS,
    description=(
        "Private: changes to circles after formation (meetings, minutes, concerns, acknowledgements, "
        "reviews, extensions, endings), from the CLI, the pages and the partner API. Minutes and concern "
        "summaries are sealed under the referral's data key."
    ),
    events=CIRCLE_COMMANDS,
    # the referrals service reads a raised concern's sealed summary, for the agency's GET of it
    consumers=(Service.CIRCLES, Service.REFERRALS),
    cli=CliAccess.WRITE,  # `circles circle meeting|minutes|concern|review|end`
    # the partner API's acknowledgement of a concern; the coordinator's and the volunteers' pages
    writers=(Service.REFERRALS, Service.COORDINATOR),
    personal_data=True,
)
CIRCLES_STATE = TopicSpec(
    name="circles.circles.state.v1",
    owner=Service.CIRCLES,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.COMPACT,
    description=(
        "Private: the circles worker's table of circles (meetings, minutes, concerns, reviews, ending, "
        "recently applied commands) as a changelog; minutes and summaries sealed under the referral's key."
    ),
    consumers=(Service.CIRCLES,),
    cli=CliAccess.READ,  # `circles circle list|show` read the table whole
    personal_data=True,
)
CIRCLES_EVENTS = TopicSpec(
    name="circles.circles.events.v1",
    owner=Service.CIRCLES,
    key="referral_id",
    partitions=REFERRAL_PARTITIONS,
    cleanup=Cleanup.DELETE,
    retention_ms=30 * DAY_MS,
    description=(
        "Facts of circles after formation: activated, meetings, minutes submitted or overdue, concerns "
        "raised, acknowledged or escalated, reviews, extensions, endings. Ids, dates and states only: never "
        "minutes or a concern's summary."
    ),
    events=CIRCLE_FACTS,
    consumers=(
        Service.MATCHING,
        Service.REFERRALS,
        Service.NOTIFICATIONS,
        Service.COORDINATOR,
    ),
    cli=CliAccess.READ,  # the outcome of `circles circle ...`
)
COORDINATOR_RECORDS = TopicSpec(
    name="circles.coordinator.records.v1",
    owner=Service.COORDINATOR,
    key="record id (panel_id, session_id, audit_id)",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description=(
        "The scheme's records against its agreed targets: MAPPA panels asked to and attended, 1-1 "
        "mentoring sessions, audits of practice. Ids, dates and counts only; kept for as long as the scheme "
        "runs (a record's id is its key), read by the commissioner's return and, for an agency's own "
        "referrals' panels, by the partner API."
    ),
    events=(MappaPanelRecorded, MentoringSessionRecorded, AuditRecorded),
    consumers=(Service.COORDINATOR, Service.REFERRALS),
    cli=CliAccess.WRITE,  # `circles mappa panel`, `circles mentoring session`, `circles audit record`
)
COORDINATOR_HISTORY = TopicSpec(
    name="circles.coordinator.history.v1",
    owner=Service.COORDINATOR,
    key="event id (ce_id)",
    partitions=1,
    cleanup=Cleanup.COMPACT,
    description=(
        "Private: the public facts the commissioner's return is computed from (referral, matching and circle "
        "events; ids, dates and states), archived one record per event so that a return for any period is "
        "the same whenever it is asked, after the source topics' retention has passed."
    ),
    consumers=(Service.COORDINATOR,),
    cli=CliAccess.READ,  # `circles report return|evidence`
)

_PRIMARY: tuple[TopicSpec, ...] = (
    REFERRAL_KEYS,
    VOLUNTEER_KEYS,
    COORDINATOR_KEYS,
    AGENCIES,
    REFERRALS_INBOUND,
    REFERRALS_COMMANDS,
    REFERRALS_STATE,
    REFERRALS_CIRCLES,
    REFERRAL_EVENTS,
    REFERRAL_ACCESS,
    VOLUNTEER_COMMANDS,
    VOLUNTEER_RECORDS,
    VOLUNTEERS,
    MATCH_DECISIONS,
    MATCHING_INBOX,
    MATCHING_CASES,
    MATCHING_POOL,
    MATCHING_EVENTS,
    NOTIFICATION_REQUESTS,
    NOTIFICATION_LOG,
    NOTIFICATION_PROGRESS,
    NOTIFICATION_EVENTS,
    COORDINATOR_ACCOUNTS,
    COORDINATOR_SESSIONS,
    VOLUNTEER_ACCOUNTS,
    VOLUNTEER_SESSIONS,
    COORDINATOR_REFERRALS,
    COORDINATOR_DEAD_LETTERS,
    COORDINATOR_CIRCLES,
    CIRCLES_COMMANDS,
    CIRCLES_STATE,
    CIRCLES_EVENTS,
    COORDINATOR_RECORDS,
    COORDINATOR_HISTORY,
)


def _dead_letters(specs: tuple[TopicSpec, ...]) -> tuple[TopicSpec, ...]:
    """A dead-letter topic for every event topic some service consumes."""
    return tuple(
        TopicSpec(
            name=spec.dlq,
            owner=spec.consumers[0],
            key="as the source record",
            partitions=1,
            cleanup=Cleanup.DELETE,
            retention_ms=90 * DAY_MS,
            description=(
                f"Records of {spec.name} that could not be parsed or processed: original bytes and headers, "
                "plus dlq_error, dlq_service, dlq_topic, dlq_partition, dlq_offset and dlq_time headers."
            ),
            personal_data=spec.personal_data,
            dead_letter=True,
        )
        for spec in specs
        if spec.consumers and spec.events
    )


TOPICS: tuple[TopicSpec, ...] = _PRIMARY + _dead_letters(_PRIMARY)

BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}

EVENT_TYPES: dict[str, type[Event]] = {event.event_type: event for spec in TOPICS for event in spec.events}
"""Every event type the system knows, for decoding."""


def events_of(spec: TopicSpec) -> dict[str, type[Event]]:
    return {event.event_type: event for event in spec.events}


def topic_of(event: type[Event]) -> TopicSpec:
    """The topic an event is published on: the one topic whose owner writes it."""
    owners = [spec for spec in _PRIMARY if event in spec.events and spec is not MATCHING_INBOX]
    if len(owners) != 1:
        raise LookupError(f"{event.event_type} is published on {len(owners)} topics")
    return owners[0]
