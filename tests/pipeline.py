"""The whole pipeline as real processes, for the scale-out and fault tests.

``Pipeline`` starts every process of ``services/processes.py`` (optionally several workers per service)
against one broker under a fresh topic prefix, with a real SMTP server and webhook receiver, one agency
(email and webhook), and a volunteer pool large enough for every referral of the test to get a circle
proposed (an open proposal holds its four volunteers). ``SteadyLoad`` submits referrals over HTTP at a
steady rate from a thread of its own while the test kills, stops and restarts things; a submission the
API could not take (connection refused while it restarts, 503 while the broker is away) is sent again
with the identical body, which the partner API contract makes safe (the same ``referral_id`` comes back).

``audit()`` then counts everything from the topics and the receivers: each referral accepted has exactly
one ``referral submitted``, one decision, one proposal and one of each expected message (email and webhook,
by their event ids), the coordinator's own state follows each of them once as proposed, and each consumer
group is back to lag 0 (``services.ops.status``). The one repeat no sender can rule out, a message taken by
its receiver in the instant before its sender was killed and sent again with the same id, is excused only as
often as that can happen: at most ``send_concurrency`` messages per restart of a notifications worker.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from schemas.common import Gender, LocalAuthority
from schemas.envelope import Envelope, Event, UndecodableRecord
from schemas.events.agencies import AgencyKind
from schemas.events.matching import MatchDeferred, MatchProposed
from schemas.events.notifications import NotificationRequested
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted
from schemas.events.volunteers import ChangeVolunteer
from schemas.topics import (
    COORDINATOR_DEAD_LETTERS,
    COORDINATOR_REFERRALS,
    MATCHING_EVENTS,
    MATCHING_POOL,
    NOTIFICATION_REQUESTS,
    REFERRAL_EVENTS,
    SUBJECT_KEYS,
    TOPICS,
    TopicSpec,
    events_of,
)
from services.dev.broker import local_kafka
from services.notifications.settings import NotificationsSettings
from services.ops.status import PipelineStatus, pipeline_status
from services.processes import WORKERS
from services.protection.codec import decode_record
from services.protection.sealer import Sealer
from services.referral_progress.progress import ReferralProgress
from services.referrals.agencies import register_agency
from services.runtime.kafka import create_topics, read_compacted
from tests.kafka_helpers import consume_all
from tests.notification_sinks import SmtpSink, WebhookSink
from tests.processes import ServiceProcess, free_port, sealer_for, sealing_publisher, service_env
from tests.samples import submission_body, volunteer_record

AGENCY = "probation-hull"
AGENCY_EMAIL = "probation.referrals@agencies.example.org"
COORDINATOR_EMAIL = "coordinator@humbercare.example.org"
COORDINATOR_TOKEN = "fault-test-coordinator-token"
APIS = {"referrals-api": "CIRCLES_API_PORT", "matching-api": "CIRCLES_MATCHING_API_PORT"}
WEB = {"coordinator-web": "CIRCLES_WEB_PORT"}
SERVICE_OF = {
    "referrals-worker": "referrals",
    "matching-worker": "matching",
    "notifications-worker": "notifications",
    "coordinator-worker": "coordinator",
    "circles-worker": "circles",
}
EXPECTED_MESSAGES = {
    ("referral_received", "email"),
    ("referral_received", "webhook"),
    ("decision_made", "email"),
    ("decision_made", "webhook"),
    ("match_proposed", "email"),
}
"""What one eligible referral that gets a circle proposed causes: the agency hears twice on two channels,
the coordinator once."""
VOLUNTEERS_PER_REFERRAL = 4
SEND_CONCURRENCY = int(NotificationsSettings.model_fields["send_concurrency"].default)
"""Messages a notifications worker has in flight at most (the processes run with the default)."""
MAX_RESTARTS = 4
"""How often the supervisor starts one process again, after exits while the broker answers, before it gives
up on it (a crash loop fails the test instead of hiding behind restarts). Exits while the broker is away are
what a worker is meant to do then, and are not counted."""


def wait_for(
    predicate: Callable[[], bool], seconds: float, what: str, every: float = 0.2, tail: str = ""
) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}\n{tail}")
        time.sleep(every)


@dataclass
class Member:
    """One process of the pipeline and where it answers /ready."""

    process: ServiceProcess
    ready_url: str

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def kind(self) -> str:
        return self.process.process

    def ready(self) -> bool:
        try:
            return httpx.get(self.ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, seconds: float = 90) -> None:
        """The process started last is up: workers have their partitions (their log says so once per
        start), APIs answer /ready."""
        if self.kind in WORKERS:
            self.process.wait_for_log("worker_ready", seconds=seconds, occurrences=self.process.starts)
        wait_for(lambda: self._alive_and_ready(), seconds, f"{self.name} /ready", tail=self.process.tail())

    def _alive_and_ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"{self.name} exited:\n{self.process.tail()}")
        return self.ready()


@dataclass
class Pipeline:
    bootstrap: str
    data_dir: Path
    workers_per_service: int = 1
    apis_per_service: int = 1
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    smtp: SmtpSink = field(default_factory=SmtpSink)
    hooks: WebhookSink = field(default_factory=WebhookSink)
    members: list[Member] = field(default_factory=list)
    api_key: str = ""
    env: dict[str, str] = field(default_factory=dict)
    restarted: list[tuple[str, int | None]] = field(default_factory=list)
    """(process, exit code) of each process the supervisor started again (see ``supervise``)."""
    crashed: list[str] = field(default_factory=list)
    """The processes of those restarts that had exited while the broker answered."""
    broker_answers: Callable[[], bool] | None = None
    """Whether the broker answers now (default: a metadata request to ``bootstrap``)."""
    gave_up: list[str] = field(default_factory=list)
    """Processes that exited again after ``MAX_RESTARTS`` restarts: the supervisor left them down."""
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    # -- setting up ---------------------------------------------------------------------------------------

    def start(self, volunteers: int, *, web: bool = True) -> Pipeline:
        asyncio.run(create_topics(self.bootstrap, TOPICS, prefix=self.prefix))
        self.smtp.start()
        self.hooks.start()
        partner_port, matching_port, web_port = free_port(), free_port(), free_port()
        self.env = service_env(
            self.bootstrap,
            self.prefix,
            self.data_dir,
            CIRCLES_SMTP_PORT=str(self.smtp.port),
            CIRCLES_COORDINATOR_EMAIL=COORDINATOR_EMAIL,
            CIRCLES_DIGEST_ENABLED="false",
            CIRCLES_RETRY_BASE_S="0.5",
            CIRCLES_RETRY_SCAN_INTERVAL_S="0.2",
            CIRCLES_COORDINATOR_API_TOKEN=COORDINATOR_TOKEN,
            CIRCLES_SESSION_SECRET="fault-test-session-secret-" + "x" * 32,
            CIRCLES_MATCHING_API_URL=f"http://127.0.0.1:{matching_port}",
            CIRCLES_PARTNER_API_URL=f"http://127.0.0.1:{partner_port}",
            CIRCLES_API_PORT=str(partner_port),
            CIRCLES_MATCHING_API_PORT=str(matching_port),
            CIRCLES_WEB_PORT=str(web_port),
        )
        self.api_key = asyncio.run(self._register_agency())
        asyncio.run(self._register_pool(volunteers))
        for kind in WORKERS:
            for n in range(1, self.workers_per_service + 1):
                port = free_port()
                env = {**self.env, "CIRCLES_WORKER_ID": f"w{n}", "CIRCLES_HEALTH_PORT": str(port)}
                self._add(ServiceProcess(kind, env, name=f"{kind}-{n}"), f"http://127.0.0.1:{port}/ready")
        self._add_api("referrals-api", partner_port)
        for n in range(2, self.apis_per_service + 1):
            port = free_port()
            env = {**self.env, "CIRCLES_API_PORT": str(port), "CIRCLES_WORKER_ID": f"api{n}"}
            self._add(ServiceProcess("referrals-api", env, name=f"referrals-api-{n}"), self._ready(port))
        self._add_api("matching-api", matching_port)
        if web:
            self._add_api("coordinator-web", web_port)
        for member in self.members:
            member.start()
        for member in self.members:
            member.wait_ready()
        wait_for(lambda: self.pool_size() == volunteers, 120, f"{volunteers} volunteers in the pool")
        return self

    def _ready(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/ready"

    def _add(self, process: ServiceProcess, ready_url: str) -> None:
        self.members.append(Member(process, ready_url))

    def _add_api(self, kind: str, port: int) -> None:
        suffix = "-1" if kind == "referrals-api" and self.apis_per_service > 1 else ""
        self._add(ServiceProcess(kind, dict(self.env), name=kind + suffix), self._ready(port))

    async def _register_agency(self) -> str:
        created = await register_agency(
            self.bootstrap,
            AGENCY,
            name="Probation Hull (synthetic)",
            kind=AgencyKind.PROBATION,
            local_authorities=[LocalAuthority.HULL],
            contact_email=AGENCY_EMAIL,
            webhook_url=self.hooks.url(AGENCY),
            prefix=self.prefix,
        )
        return created.api_key

    async def _register_pool(self, count: int) -> None:
        today = datetime.now(UTC).date()
        async with sealing_publisher(self.env, "/tests/coordinator") as publisher:
            pending = []
            for i in range(count):
                record = volunteer_record(
                    f"vol-{i:04d}",
                    gender=Gender.MALE if i % 2 else Gender.FEMALE,
                    local_authority=[LocalAuthority.HULL, LocalAuthority.EAST_RIDING][i % 2],
                    max_circles=1,
                    experienced=i % 4 == 0,
                    dbs_checked_on=today - timedelta(days=200),
                    trained_on=today - timedelta(days=150),
                    last_supervised_on=today - timedelta(days=10),
                    registered_on=today - timedelta(days=210),
                )
                command = ChangeVolunteer(
                    volunteer_id=record.volunteer_id,
                    change="registered",
                    registration=record,
                    requested_by="coordinator",
                )
                pending.append(await publisher.send(command, publisher.envelope(command, "pool")))
            await asyncio.gather(*pending)

    def pool_size(self) -> int:
        """Volunteers the matcher has applied (its pool changelog)."""
        return len(asyncio.run(read_compacted(self.bootstrap, self.prefix + MATCHING_POOL.name, lambda v: v)))

    # -- running ------------------------------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Member]:
        return [member for member in self.members if member.kind == kind]

    def partner_urls(self) -> list[str]:
        return [member.ready_url.removesuffix("/ready") for member in self.of_kind("referrals-api")]

    def status(self) -> PipelineStatus:
        return asyncio.run(pipeline_status(self.bootstrap, self.prefix))

    def supervise(self) -> None:
        """From now on, start a process again when it exits, as ``circles dev up`` and Kubernetes do: a worker
        stops on an infrastructure failure (say a batch that expired while the broker was away) and counts on
        that. Only for tests that do not stop processes themselves."""

        host, port = self.bootstrap.rsplit(":", 1)
        answers = self.broker_answers or (lambda: bool(local_kafka().answers_metadata(host, int(port))))

        def watch() -> None:
            while not self._stopping.wait(0.5):
                for member in self.members:
                    if member.process.alive() or member.name in self.gave_up:
                        continue
                    if self.crashed.count(member.name) >= MAX_RESTARTS:
                        self.gave_up.append(member.name)  # a crash loop: left down, and the test fails
                        continue
                    assert member.process.popen is not None
                    self.restarted.append((member.name, member.process.popen.returncode))
                    if answers():
                        self.crashed.append(member.name)
                    member.start()

        self._supervisor = threading.Thread(target=watch, name="supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for member in reversed(self.members):
            member.process.stop()
        self.hooks.stop()
        self.smtp.stop()

    def logs(self) -> str:
        return "".join(member.process.logs() for member in self.members)

    def tails(self) -> str:
        return "\n".join(f"--- {m.name}\n{m.process.tail(15)}" for m in self.members)

    # -- counting -----------------------------------------------------------------------------------------

    def distinct_messages(self) -> int:
        return len({m.event_id for m in self.smtp.received()}) + len(
            {d.event_id for d in self.hooks.received(ok=True)}
        )

    def settled(self, referrals: int) -> bool:
        """Every expected message received, every group back to lag 0 with all its workers in it."""
        assert not self.gave_up, f"crash loops: {self.gave_up}; restarts {self.restarted}"
        if self.distinct_messages() < referrals * len(EXPECTED_MESSAGES):
            return False
        status = self.status()
        return all(s.lag == 0 and s.active_members == self.workers_per_service for s in status.services)

    def wait_until_settled(self, referrals: int, seconds: float = 180) -> PipelineStatus:
        wait_for(
            lambda: self.settled(referrals),
            seconds,
            f"{referrals * len(EXPECTED_MESSAGES)} messages and lag 0 "
            f"(now {self.distinct_messages()} messages; {self._lags()})",
            every=0.5,
            tail=self.tails(),
        )
        for member in self.members:
            assert member.process.alive() and member.ready(), f"{member.name} is not ready"
        return self.status()

    def _lags(self) -> str:
        try:
            return ", ".join(
                f"{s.service}: lag {s.lag}, {s.active_members} live" for s in self.status().services
            )
        except Exception as error:  # the broker may be away: the message is only for the timeout's text
            return type(error).__name__

    def audit(self, accepted: set[str], malformed: Mapping[str, int] | None = None) -> Audit:
        """Count everything and assert the exact numbers (see the module docstring). ``malformed``: how many
        records that are not events of the topic the test itself wrote to each topic (catalogue name)."""
        audit = Audit(accepted)
        sealer = sealer_for(self.env, list(SUBJECT_KEYS))
        events = asyncio.run(
            self._events(sealer, [REFERRAL_EVENTS, MATCHING_EVENTS, NOTIFICATION_REQUESTS], audit)
        )
        for envelope, event in events[REFERRAL_EVENTS.name]:
            if isinstance(event, ReferralSubmitted):
                audit.submitted[str(event.referral_id)].add(envelope.id)
            elif isinstance(event, ReferralAssessed):
                audit.decisions[str(event.referral_id)].add(envelope.id)
                audit.outcome[str(event.referral_id)] = event.decision.outcome.value
            audit.referral_records += 1
        for envelope, event in events[MATCHING_EVENTS.name]:
            if isinstance(event, MatchProposed):
                audit.proposals[str(event.referral_id)].add(event.proposal_id)
            elif isinstance(event, MatchDeferred):
                audit.deferrals[str(event.referral_id)].add(envelope.id)
        for _, event in events[NOTIFICATION_REQUESTS.name]:
            if isinstance(event, NotificationRequested):
                context = event.context
                slot = (str(context.referral_id), event.template, event.recipient.channel.value)
                audit.requested[slot].add(str(event.notification_id))
        audit.mails = Counter(mail.event_id for mail in self.smtp.received())
        audit.webhooks = Counter(d.event_id for d in self.hooks.received(ok=True))
        audit.in_doubt = {
            line["notification_id"]
            for member in self.of_kind("notifications-worker")
            for line in _json_lines(member.process.logs())
            if line.get("event") == "notification_in_doubt_resent"
        }
        audit.sender_restarts = sum(m.process.starts - 1 for m in self.of_kind("notifications-worker"))
        audit.coordinator = asyncio.run(
            read_compacted(
                self.bootstrap, self.prefix + COORDINATOR_REFERRALS.name, ReferralProgress.model_validate_json
            )
        )
        audit.coordinator_dead_letters = len(
            asyncio.run(read_compacted(self.bootstrap, self.prefix + COORDINATOR_DEAD_LETTERS.name, bytes))
        )
        expected = {topic: (malformed or {}).get(topic, 0) for topic in audit.malformed}
        assert audit.malformed == expected, f"records that are not events: {audit.malformed}, not {expected}"
        audit.check()
        return audit

    async def _events(
        self, sealer: Sealer, specs: list[TopicSpec], audit: Audit
    ) -> dict[str, list[tuple[Envelope, Event]]]:
        """Each topic's events, sealed fields opened as their consumers open them; what is not one of them
        is counted in ``audit.malformed``."""
        found: dict[str, list[tuple[Envelope, Event]]] = {}
        await sealer.start()
        try:
            for spec in specs:
                known = events_of(spec)
                audit.malformed[spec.name] = 0
                found[spec.name] = []
                for record in await consume_all(self.bootstrap, self.prefix + spec.name, seconds=60):
                    try:
                        found[spec.name].append(
                            await decode_record(record.value, record.headers, known, sealer)
                        )
                    except UndecodableRecord:
                        audit.malformed[spec.name] += 1
        finally:
            await sealer.stop()
        return found


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


@dataclass
class Audit:
    accepted: set[str]
    submitted: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    decisions: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    outcome: dict[str, str] = field(default_factory=dict)
    proposals: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    deferrals: dict[str, set[uuid.UUID]] = field(default_factory=lambda: defaultdict(set))
    requested: dict[tuple[str, str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    mails: Counter[str] = field(default_factory=Counter)
    webhooks: Counter[str] = field(default_factory=Counter)
    in_doubt: set[str] = field(default_factory=set)
    sender_restarts: int = 0
    coordinator: dict[str, ReferralProgress] = field(default_factory=dict)
    coordinator_dead_letters: int = 0
    referral_records: int = 0
    malformed: dict[str, int] = field(default_factory=dict)

    def check(self) -> None:
        accepted = self.accepted
        lost = accepted - set(self.decisions)
        assert not lost, f"{len(lost)} referrals lost (no decision), e.g. {sorted(lost)[:3]}"
        assert set(self.submitted) == accepted, "a referral event for a referral nobody submitted"
        for what, events in (("submitted", self.submitted), ("decided", self.decisions)):
            twice = sorted(r for r, ids in events.items() if len(ids) != 1)
            assert not twice, f"{len(twice)} referrals {what} twice (under two event ids), e.g. {twice[:3]}"
        outcomes = Counter(self.outcome.values())
        assert outcomes == {"eligible": len(accepted)}, outcomes
        assert set(self.proposals) == accepted, f"{len(accepted - set(self.proposals))} without a proposal"
        assert all(len(ids) == 1 for ids in self.proposals.values()), "a referral got two proposals"
        assert not self.deferrals, f"{len(self.deferrals)} referrals deferred: the pool was too small"
        expected = {(r, template, channel) for r in accepted for template, channel in EXPECTED_MESSAGES}
        assert set(self.requested) == expected, (
            f"messages asked for: {len(self.requested)} kinds, expected {len(expected)}; "
            f"unexpected {sorted(set(self.requested) - expected)[:3]}"
        )
        doubled = {slot: ids for slot, ids in self.requested.items() if len(ids) != 1}
        assert not doubled, f"one message under two ids: {list(doubled.items())[:3]}"
        wanted = {ids.pop() for ids in map(set, self.requested.values())}
        received = set(self.mails) | set(self.webhooks)
        assert received == wanted, (
            f"{len(wanted - received)} messages not delivered, {len(received - wanted)} unexpected"
        )
        counts = self.mails + self.webhooks
        repeated = {i for i, n in counts.items() if n > 1}
        # The one repeat no sender can rule out (docs/architecture.md, "What once means"): a message the
        # receiver took in the instant before a SIGKILL, sent again with the same event id; the worker logs
        # each such resend, and has at most SEND_CONCURRENCY in flight when it dies. Anything else received
        # twice is a duplicate.
        assert repeated <= self.in_doubt, (
            f"sent twice without being in doubt: {sorted(repeated - self.in_doubt)}"
        )
        bound = SEND_CONCURRENCY * self.sender_restarts
        assert len(repeated) <= bound, f"{len(repeated)} messages repeated, more than {bound} in flight"
        assert all(counts[i] <= 1 + self.sender_restarts for i in repeated), "a message repeated too often"
        self.check_coordinator()

    def check_coordinator(self) -> None:
        """The coordinator's own state (its referrals table) holds each accepted referral once, as proposed
        (the matcher's proposal reached it), and nothing else; no message was dead-lettered to it."""
        held = set(self.coordinator)
        assert held == self.accepted, (
            f"coordinator state: {len(self.accepted - held)} referrals missing, {len(held - self.accepted)} "
            f"it should not know"
        )
        statuses = Counter(progress.status.value for progress in self.coordinator.values())
        assert statuses == {"proposed": len(self.accepted)}, f"coordinator's statuses: {statuses}"
        assert all(p.proposed_at and p.agency_reference for p in self.coordinator.values())
        assert self.coordinator_dead_letters == 0, f"{self.coordinator_dead_letters} undelivered messages"

    @property
    def messages(self) -> int:
        return len(set(self.mails) | set(self.webhooks))

    @property
    def repeated(self) -> int:
        return sum(n - 1 for n in (self.mails + self.webhooks).values())

    def summary(self) -> str:
        redelivered = (
            self.referral_records
            - sum(len(v) for v in self.submitted.values())
            - sum(len(v) for v in self.decisions.values())
        )
        return (
            f"{len(self.accepted)} referrals: {len(self.decisions)} decisions, "
            f"{sum(len(v) for v in self.proposals.values())} proposals, {self.messages} messages "
            f"({sum(self.mails.values())} emails and {sum(self.webhooks.values())} webhooks received; "
            f"{self.repeated} repeats with the same event id, {len(self.in_doubt)} in doubt); "
            f"{redelivered} redelivered referral-event records (dropped by consumers on their id)"
        )


@dataclass
class SteadyLoad:
    """Submits ``count`` referrals at ``rate`` per second from a thread of its own (or fewer: ``finish()``
    ends it early, for a test whose faults set its length), each until an API instance has taken it (202, or
    200 for a resubmission); connection failures and 503 are retried with the same body against the next
    instance, anything else fails the load.

    Like an agency's system, it has at most ``in_flight`` submissions waiting for an answer and does not
    make up for lost time: while the API is away the load pauses instead of using up ``count`` in retries
    (a broker recovery slower than ``count / rate`` seconds had ended a fault test's load early), and
    afterwards goes on at ``rate``, not in a burst."""

    urls: list[str]
    api_key: str
    count: int
    rate: float
    reference: str = "LOAD"
    give_up_s: float = 120.0
    in_flight: int = 16
    accepted: dict[int, str] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    scheduled: int = 0
    """Referrals submitted so far (each is retried until taken)."""
    _thread: threading.Thread | None = None
    _progress: threading.Condition = field(default_factory=threading.Condition)
    _finish: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    finished_at: float = 0.0

    def body(self, number: int) -> dict[str, Any]:
        return submission_body(
            agency_reference=f"{self.reference}-{number:05d}",
            core_member__local_authority="hull",
            custody__in_custody=False,
            custody__establishment=None,
            custody__expected_release_date=None,
            consent__date=date.today().isoformat(),
        )

    def start(self) -> SteadyLoad:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="steady-load")
        self._thread.start()
        return self

    def wait_accepted(self, count: int, seconds: float = 120) -> None:
        """Block until ``count`` referrals have been taken (the test's clock for its next fault)."""
        with self._progress:
            ok = self._progress.wait_for(lambda: len(self.accepted) >= count or bool(self.errors), seconds)
        taken = len(self.accepted)
        assert ok, f"only {taken} of {count} referrals taken within {seconds}s ({self.scheduled} sent)"
        assert not self.errors, self.errors[:5]

    def running(self) -> bool:
        """Still submitting new referrals (not all ``count`` scheduled, not finished)."""
        return self.scheduled < self.count and not self._finish.is_set()

    def finish(self) -> None:
        """Submit no more new referrals; those already submitted are still sent until taken."""
        self._finish.set()

    def join(self, seconds: float = 300) -> set[str]:
        assert self._thread is not None
        self._thread.join(seconds)
        assert not self._thread.is_alive(), "the load did not finish"
        assert not self.errors, self.errors[:5]
        assert len(self.accepted) == self.scheduled
        return set(self.accepted.values())

    async def _run(self) -> None:
        self.started_at = time.monotonic()
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.api_key}"}, timeout=httpx.Timeout(30, connect=5)
        ) as client:
            tasks = []
            window = asyncio.Semaphore(self.in_flight)
            due = self.started_at
            for number in range(self.count):
                await window.acquire()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the load, not waiting for a condition
                if self._finish.is_set():
                    break
                tasks.append(asyncio.create_task(self._submit(client, number, window)))
                self.scheduled = number + 1
                due = max(due, time.monotonic()) + 1 / self.rate
            await asyncio.gather(*tasks)
        self.finished_at = time.monotonic()

    async def _submit(self, client: httpx.AsyncClient, number: int, window: asyncio.Semaphore) -> None:
        try:
            await self._until_answered(client, number)
        finally:
            window.release()

    async def _until_answered(self, client: httpx.AsyncClient, number: int) -> None:
        body = self.body(number)
        deadline = time.monotonic() + self.give_up_s
        attempt = 0
        while True:
            url = self.urls[(number + attempt) % len(self.urls)]
            attempt += 1
            try:
                response = await client.post(f"{url}/v1/referrals", json=body)
            except httpx.TransportError as error:
                reason = type(error).__name__
            else:
                if response.status_code in (200, 202):
                    with self._progress:
                        self.accepted[number] = response.json()["referral_id"]
                        self._progress.notify_all()
                    return
                if response.status_code != 503:
                    with self._progress:
                        self.errors.append(f"{number}: {response.status_code} {response.text[:300]}")
                        self._progress.notify_all()
                    return
                reason = "503"
            self.retries[reason] += 1
            if time.monotonic() > deadline:
                with self._progress:
                    self.errors.append(f"{number}: not taken within {self.give_up_s}s ({reason})")
                    self._progress.notify_all()
                return
            await asyncio.sleep(0.2)  # back-off of a client whose request did not reach a ready API
