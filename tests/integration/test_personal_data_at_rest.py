"""No personal value at rest in Kafka, in any topic or on the broker's disk, after a realistic run of the
whole system.

Every process runs (referrals worker and API, matching worker and API, notifications with a real SMTP
server, coordinator worker and page) over a broker of the module's own, whose data directory the test can
read. Agencies, volunteers and a coordinator account come from the CLI (the volunteers' vetting, training,
supervision and a conflict are sent as the CLI sends them); referrals arrive over HTTP and over Kafka (the
inbound topic, in the clear, as agency systems write it), one of them malformed (dead-lettered); a circle is
proposed and accepted through the matching API; messages are sent. Then

* every record of every topic under the test's prefix (catalogue topics, changelogs, keys topics, dead
  letters, the access log) is read raw, key, value and headers, and searched for each seeded value;
* every file in the broker's data directory (log segments, indexes, snapshots, checkpoints, the broker's
  own log) is searched too: none holds a seeded value, except the inbound topic's segments, where purged
  records (DeleteRecords) stay until their segment is deleted;
* that bound is held (docs/architecture.md, "Inbound purge"): with the inbound topic's ``segment.ms`` and the
  broker's retention check shortened, once the segment has rolled (a later record, here one without
  personal data) and the purge has passed it, the plaintext leaves the disk within a retention check plus
  ``file.delete.delay.ms``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.events.volunteers import ChangeVolunteer, Conflict
from schemas.topics import (
    CIRCLES_STATE,
    MATCHING_CASES,
    REFERRAL_KEYS,
    REFERRALS_INBOUND,
    REFERRALS_STATE,
    TOPICS,
)
from services.circles.domain.circle import Circle
from services.matching.domain.cases import Case
from services.referrals.domain.referral import ReferralEntry
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.kafka_broker import LocalKafka
from tests.kafka_helpers import consume_all
from tests.notification_sinks import SmtpSink, wait_until
from tests.processes import (
    ServiceProcess,
    free_port,
    read_sealed_table,
    run_cli,
    sealing_publisher,
    service_env,
)
from tests.samples import (
    MINUTES_SENTINEL,
    PERSONAL_SENTINELS,
    SUMMARY_SENTINEL,
    inbound_record,
    submission_body,
)

pytestmark = pytest.mark.integration
COORDINATOR = "coordinator@circles.example.org"
VOLUNTEERS = [("vol-a", "female"), ("vol-b", "male"), ("vol-c", "female"), ("vol-d", "male")]
INBOUND = {
    "core_member__given_name": "Inboundia",
    "core_member__family_name": "Kafkasubmitterson",
    "core_member__date_of_birth": "1981-07-19",
    "core_member__pnc_number": "2011/0765432Q",
    "referrer__name": "Rex Producerly",
    "referrer__email": "rex.producerly@example.org",
    "notes": "Inbound-only invented note about a synthetic person.",
}
DECISION_NOTE = "Spoke with Sentinel Casefriend's sister about the circle"
COORDINATOR_TOKEN = "synthetic-coordinator-token-at-rest"
SEGMENT_MS = 3_000
"""The test's inbound topic rolls its segment on the first append this long after the segment's first
record (the catalogue: an hour)."""
RETENTION_CHECK_MS = 1_000
"""How often the module's broker deletes segments below a partition's start (Kafka's default: 5 minutes)."""
DELETE_DELAY_MS = 1_000
"""How long a deleted segment lingers as a ``.deleted`` file (``file.delete.delay.ms``; default a minute)."""
SEEDED = (
    *PERSONAL_SENTINELS,
    *INBOUND.values(),
    *(f"Volunteerina Sealworth {v}" for v, _ in VOLUNTEERS),
    "knows Sentinel Neighbourly from school",
    "Coordinatrix Sentinella",
    "moved to Sentinelshire with family",
    DECISION_NOTE,
)
"""Every personal value the run puts in: the submissions', the volunteers' names and a conflict's
reason, the coordinator's name, a withdrawal's reason, the coordinator's note on a decision."""


@dataclass
class Run:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    api_url: str
    matching_url: str
    smtp: SmtpSink
    keys: dict[str, str]
    signing_keys: dict[str, str]
    processes: list[ServiceProcess]
    broker_dir: Path

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args).stdout

    def cli_all(self, commands: list[list[str]]) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda args: self.cli(*args), commands))

    def client(self, agency: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.keys[agency]}"}, timeout=10
        )

    def status(self, agency: str, referral_id: str, wanted: str, seconds: float = 45) -> None:
        deadline = time.monotonic() + seconds
        with self.client(agency) as client:
            while (view := client.get(f"/v1/referrals/{referral_id}").json()).get("status") != wanted:
                assert time.monotonic() < deadline, view
                time.sleep(0.2)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of the module's own: its whole data directory is searched, and it checks retention often."""
    properties = {"log.retention.check.interval.ms": str(RETENTION_CHECK_MS)}
    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("at-rest-kafka"), extra_properties=properties)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


async def shorten_inbound_segments(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {
            **REFERRALS_INBOUND.config,
            "segment.ms": str(SEGMENT_MS),
            "file.delete.delay.ms": str(DELETE_DELAY_MS),
        }
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def run(broker: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    bootstrap = broker.bootstrap_servers
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(bootstrap, TOPICS, prefix=prefix))
    asyncio.run(shorten_inbound_segments(bootstrap, prefix + REFERRALS_INBOUND.name))
    data: Path = tmp_path_factory.mktemp("at-rest")
    clock = data / "now"
    clock.write_text("2026-11-24T10:00:00+00:00")
    smtp = SmtpSink().start()
    port, matching_port, web_port = free_port(), free_port(), free_port()
    env = service_env(
        bootstrap,
        prefix,
        data,
        CIRCLES_CLOCK=f"file:{clock}",
        CIRCLES_API_PORT=str(port),
        CIRCLES_MATCHING_API_PORT=str(matching_port),
        CIRCLES_MATCHING_API_URL=f"http://127.0.0.1:{matching_port}",
        CIRCLES_COORDINATOR_API_TOKEN=COORDINATOR_TOKEN,
        CIRCLES_WEB_PORT=str(web_port),
        CIRCLES_SESSION_SECRET="synthetic-session-secret-at-rest-" + "x" * 32,
        CIRCLES_SMTP_PORT=str(smtp.port),
        CIRCLES_COORDINATOR_EMAIL=COORDINATOR,
        CIRCLES_DIGEST_ENABLED="false",
        CIRCLES_INBOUND_PURGE_INTERVAL_S="0.5",
    )
    keys, signing_keys = {}, {}
    for agency, kind in (("mappa-humberside", "mappa"), ("police-mosovo", "police")):
        args = ["agency", "add", agency, "--name", f"{agency} (test)", "--kind", kind, "--json"]
        args += ["--local-authority", "hull", "--contact-email", f"{agency}@agencies.example.org"]
        created = json.loads(run_cli(env, *args).stdout)
        keys[agency], signing_keys[agency] = created["api_key"], created["kafka_signing_key"]
    processes = [
        ServiceProcess(name, env).start()
        for name in (
            "referrals-worker",
            "referrals-api",
            "matching-worker",
            "matching-api",
            "notifications-worker",
            "coordinator-worker",
            "coordinator-web",
            "circles-worker",
        )
    ]
    ports = {"referrals-api": port, "matching-api": matching_port, "coordinator-web": web_port}
    try:
        for process in processes:
            if process.process.endswith("worker"):
                process.wait_for_log("worker_ready")
            else:
                process.wait_http(f"http://127.0.0.1:{ports[process.process]}/ready")
        yield Run(
            env,
            prefix,
            bootstrap,
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{matching_port}",
            smtp,
            keys,
            signing_keys,
            processes,
            Path(str(broker.data_dir)),
        )
    finally:
        for process in processes:
            process.stop()
        smtp.stop()
    assert leaks("".join(process.logs() for process in processes)) == []


async def every_record(bootstrap: str, prefix: str) -> dict[str, list[Any]]:
    """Every record still readable in every topic under ``prefix``, from the start of each partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if name.startswith(prefix))
    finally:
        await admin.close()
    return {name: await consume_all(bootstrap, name) for name in names}


def found_in(record: Any) -> list[str]:
    raw = b"".join([record.key or b"", record.value or b"", *(value or b"" for _, value in record.headers)])
    return [value for value in SEEDED if value.encode() in raw]


def inbound_bodies() -> tuple[dict[str, Any], dict[str, Any]]:
    """The inbound submissions, as agency systems write them: one good, one malformed."""
    return (
        submission_body(agency_reference="POLICE-INBOUND-1", **INBOUND),
        submission_body(agency_reference="POLICE-INBOUND-2", risk__level="extreme", **INBOUND),
    )


def inbound_values() -> set[str]:
    """The seeded values the inbound records carry in the clear."""
    sent = json.dumps(inbound_bodies(), ensure_ascii=False)
    return {value for value in SEEDED if value in sent}


async def submit_inbound(run: Run) -> None:
    key = run.signing_keys["police-mosovo"]
    records = [
        inbound_record("police-mosovo", key, body, correlation_id=f"inbound-{n}")
        for n, body in enumerate(inbound_bodies(), start=1)
    ]
    async with Publisher(run.bootstrap, "/agencies/police-mosovo", prefix=run.prefix) as publisher:
        for record_key, value, headers in records:
            await publisher.send_raw(run.prefix + REFERRALS_INBOUND.name, value, record_key, headers)


async def make_ready(run: Run) -> None:
    """Vetting, training, supervision and a conflict, sent as the CLI sends them (sealed), in one process
    rather than thirteen (the CLI registered the volunteers)."""
    today = date(2026, 11, 24)
    changes = [
        ChangeVolunteer(volunteer_id=v, change=change, on=on, requested_by="coordinator")
        for v, _ in VOLUNTEERS
        for change, on in (
            ("vetted", date(2026, 1, 10)),
            ("trained", date(2026, 2, 1)),
            ("supervised", today),
        )
    ]
    reason = "knows Sentinel Neighbourly from school"
    conflict = Conflict(postcode_district="DN15", reason=reason, declared_on=today)
    changes.append(
        ChangeVolunteer(volunteer_id="vol-a", change="conflict", conflict=conflict, requested_by="c")
    )
    async with sealing_publisher(run.env, "/circles/matching/cli") as publisher:
        for change in changes:
            await publisher.publish(change, publisher.envelope(change, f"volunteer-{change.volunteer_id}"))


def record_minutes_and_a_concern(run: Run, circle_id: str) -> None:
    """A meeting with its minutes and an urgent concern on the formed circle, through the CLI (the clock is
    set to the real day: the circle formed today, and a meeting is not dated before that)."""
    clock = Path(run.env["CIRCLES_CLOCK"].removeprefix("file:"))
    clock.write_text(datetime.now(UTC).isoformat())
    wait_until(lambda: circle_id in run.cli("circle", "list"), seconds=30, what="the circle to be active")
    folder = Path(run.env["CIRCLES_DATA_DIR"])
    (folder / "minutes.txt").write_text(MINUTES_SENTINEL)
    (folder / "summary.txt").write_text(SUMMARY_SENTINEL)
    today = datetime.now(UTC).date().isoformat()
    run.cli("circle", "meeting", circle_id, "--date", today, "--core-member", "attended",
            "--minutes-file", str(folder / "minutes.txt"))  # fmt: skip
    run.cli(
        "circle", "concern", circle_id, "--level", "urgent", "--summary-file", str(folder / "summary.txt")
    )
    (folder / "minutes.txt").unlink()
    (folder / "summary.txt").unlink()


def test_after_a_realistic_run_no_topic_and_no_file_of_the_broker_holds_a_personal_value(run: Run) -> None:
    started = time.monotonic()
    run.cli_all(
        [
            ["coordinator", "add", "coord-1", "--name", "Coordinatrix Sentinella", "--json"],
            *[
                ["volunteer", "add", v, "--name", f"Volunteerina Sealworth {v}", "--gender", g,
                 "--local-authority", "hull", "--postcode-district", "HU7", "--max-circles", "1"]
                for v, g in VOLUNTEERS
            ],
        ]
    )  # fmt: skip
    asyncio.run(make_ready(run))
    with run.client("mappa-humberside") as client:
        eligible = client.post("/v1/referrals", json=submission_body(agency_reference="REST-1")).json()
        run.status("mappa-humberside", eligible["referral_id"], "proposed")  # holds the whole pool
        low = submission_body(agency_reference="REST-2", risk__level="low")
        ineligible = client.post("/v1/referrals", json=low).json()
        waiting = client.post("/v1/referrals", json=submission_body(agency_reference="REST-3")).json()
        run.status("mappa-humberside", waiting["referral_id"], "awaiting_volunteers")
        reason = {"reason": "moved to Sentinelshire with family"}
        assert (
            client.post(f"/v1/referrals/{waiting['referral_id']}/withdrawal", json=reason).status_code == 200
        )
    asyncio.run(submit_inbound(run))
    run.status("mappa-humberside", waiting["referral_id"], "withdrawn")
    run.status("mappa-humberside", ineligible["referral_id"], "ineligible")
    proposal = next(
        p for p in json.loads(run.cli("proposal", "list", "--status", "open", "--json"))
        if p["referral_id"] == eligible["referral_id"]
    )  # fmt: skip
    decided = httpx.post(
        f"{run.matching_url}/v1/proposals/{proposal['proposal_id']}/decision",
        json={"outcome": "accept", "note": DECISION_NOTE},
        headers={"Authorization": f"Bearer {COORDINATOR_TOKEN}"},
        timeout=30,
    )
    assert decided.status_code == 200, decided.text
    run.status("mappa-humberside", eligible["referral_id"], "circle_formed")
    with run.client("police-mosovo") as client:
        listed = client.get("/v1/referrals").json()["referrals"]
    assert [r["agency_reference"] for r in listed] == ["POLICE-INBOUND-1"]
    wait_until(
        lambda: any(m.template == "circle_formed" for m in run.smtp.received()), seconds=30, what="messages"
    )
    record_minutes_and_a_concern(run, f"circle-{eligible['referral_id']}")
    inbound_topic = run.prefix + REFERRALS_INBOUND.name
    wait_until(lambda: not asyncio.run(consume_all(run.bootstrap, inbound_topic)), what="the inbound purge")
    print(f"\nrealistic run: {time.monotonic() - started:.1f}s")

    topics = asyncio.run(every_record(run.bootstrap, run.prefix))
    assert set(topics) == {run.prefix + spec.name for spec in TOPICS}
    leaked = {
        (name.removeprefix(run.prefix), record.partition, record.offset): values
        for name, records in topics.items()
        for record in records
        if (values := found_in(record))
    }
    assert leaked == {}
    held = {name.removeprefix(run.prefix): len(records) for name, records in topics.items() if records}
    print(f"records searched: {sum(held.values())} in {len(held)} topics")
    for name in (
        REFERRAL_KEYS.name,
        REFERRALS_STATE.name,
        "circles.referrals.commands.v1",
        "circles.referrals.inbound.v1.dlq",
        "circles.volunteers.keys.v1",
        "circles.volunteers.records.v1",
        "circles.coordinator.keys.v1",
        "circles.coordinator.accounts.v1",
        "circles.matching.pool.v1",
        "circles.matching.decisions.v1",
        "circles.matching.cases.v1",
        "circles.notifications.log.v1",
        "circles.referrals.access.v1",
        "circles.circles.commands.v1",
        "circles.circles.state.v1",
    ):
        assert held.get(name), f"{name} is empty: the search proves nothing there"
    assert REFERRALS_INBOUND.name not in held  # purged once processed

    # the values are there, sealed: the keys open them
    state = asyncio.run(read_sealed_table(run.env, REFERRALS_STATE.name, ReferralEntry))
    opened = state[eligible["referral_id"]].model_dump_json()
    assert "Testy" in opened and "Fictionalperson" in opened
    police = next(
        entry for entry in state.values() if entry.record and entry.record.agency_id == "police-mosovo"
    )
    assert "Kafkasubmitterson" in police.model_dump_json()
    cases = asyncio.run(read_sealed_table(run.env, MATCHING_CASES.name, Case))
    assert DECISION_NOTE in cases[eligible["referral_id"]].model_dump_json()
    circles = asyncio.run(read_sealed_table(run.env, CIRCLES_STATE.name, Circle))
    opened_circle = circles[eligible["referral_id"]].model_dump_json()
    assert MINUTES_SENTINEL in opened_circle and SUMMARY_SENTINEL in opened_circle
    assert files_holding(Path(run.env["CIRCLES_DATA_DIR"]) / "state", SEEDED) == {}  # the workers' tables
    mails = b"".join(mail.raw for mail in run.smtp.received())
    assert mails and not [value for value in SEEDED if value.encode() in mails]
    check_the_brokers_disk(run)


OFFSET_INDEXES = (".index", ".timeindex")
"""A segment's offset and time indexes: fixed-width offsets, positions and timestamps, no record content;
preallocated 10 MB each (sparse), so reading them would be most of the search's time."""


def files_holding(folder: Path, values: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file below ``folder`` (relative path) holding any of ``values``, raw bytes searched: segments,
    snapshots, checkpoints, metadata, the broker's own log (offset indexes aside: ``OFFSET_INDEXES``)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith(OFFSET_INDEXES):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:  # a segment deleted while we walked
                continue
            if held := [value for value in values if value.encode() in raw]:
                found[str(path.relative_to(folder))] = held
    return found


def partition_dirs(run: Run, topic: str) -> list[Path]:
    return sorted((run.broker_dir / "logs").glob(f"{run.prefix}{topic}-*"))


async def roll_inbound(run: Run, partitions: list[int]) -> None:
    """A record without personal data on each partition: the first append past ``segment.ms`` rolls the
    segment holding the purged submissions (the worker dead-letters this one, and the purge passes it)."""
    producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, acks="all")
    await producer.start()
    try:
        for partition in partitions:
            await producer.send_and_wait(
                run.prefix + REFERRALS_INBOUND.name, b"{}", key=b"ROLL", partition=partition
            )
    finally:
        await producer.stop()


def check_the_brokers_disk(run: Run) -> None:
    """The broker's files, with every process running: plaintext only in the purged inbound segments, and
    there only until the segment is deleted (the stated bound)."""
    assert all(process.alive() for process in run.processes), [p.name for p in run.processes if not p.alive()]
    inbound = {d.name for d in partition_dirs(run, REFERRALS_INBOUND.name)}
    on_disk = files_holding(run.broker_dir, SEEDED)
    elsewhere = {path: values for path, values in on_disk.items() if not inbound & set(Path(path).parts)}
    assert elsewhere == {}, f"personal data on the broker's disk: {elsewhere}"
    assert any(path.endswith(".log") for path in on_disk), "the purged inbound plaintext is not on disk"
    assert {value for values in on_disk.values() for value in values} <= inbound_values()

    # The stated bound: the segment rolls on the first append after segment.ms; once the purge has passed
    # it, the next retention check deletes it, and file.delete.delay.ms later the file is gone.
    holding = sorted({int(Path(path).parent.name.rsplit("-", 1)[1]) for path in on_disk})
    segments = [path for d in partition_dirs(run, REFERRALS_INBOUND.name) for path in d.glob("*.log")]
    written = max(path.stat().st_mtime for path in segments)  # their last append
    time.sleep(max(0.0, written + SEGMENT_MS / 1000 - time.time()))  # the segment's age, not a condition
    asyncio.run(roll_inbound(run, holding))
    rolled = time.monotonic()
    inbound_topic = run.prefix + REFERRALS_INBOUND.name
    wait_until(lambda: not asyncio.run(consume_all(run.bootstrap, inbound_topic)), what="the purge")
    purged = time.monotonic()
    bound = (RETENTION_CHECK_MS + DELETE_DELAY_MS) / 1000 + 15  # slack: a loaded machine (5 s was short)
    wait_until(lambda: files_holding(run.broker_dir, SEEDED) == {}, seconds=bound, what="segment deletion")
    print(
        f"\non disk: purged inbound plaintext in {sorted(on_disk)}; gone {time.monotonic() - purged:.1f}s "
        f"after the purge passed the roll ({purged - rolled:.1f}s after it)"
    )
