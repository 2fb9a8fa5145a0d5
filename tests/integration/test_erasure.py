"""Erasure end to end: real referrals worker, partner API and coordinator worker over the real broker.

``circles erase referral`` and ``circles retention apply`` run as a user runs them (their own processes);
the services are restarted afterwards, so what is shown is what survives in Kafka, not in memory. The
clock of every process (and of the CLI) reads a file the test moves.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.events.referrals import (
    ReferralAssessed,
    ReferralErased,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmitReferral,
)
from schemas.topics import REFERRAL_KEYS, REFERRALS_COMMANDS, REFERRALS_STATE, TOPICS
from services.coordinator.domain.report import Period, Report, build_report
from services.coordinator.views import CoordinatorViews
from services.protection.codec import decode_record
from services.protection.errors import KeyDestroyed
from services.protection.keystore import KeyRecord
from services.protection.sealing import sealed_key_ids
from services.referrals.domain.referral import ReferralEntry
from services.runtime.kafka import create_topics, producer
from tests.conftest import leaks
from tests.kafka_helpers import consume_all
from tests.processes import ServiceProcess, free_port, run_cli, sealer_for, service_env
from tests.samples import submission_body

pytestmark = pytest.mark.integration
START = "2026-11-24T10:00:00+00:00"
AGENCIES = ("mappa-humberside", "police-mosovo")


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    api_url: str
    clock_file: Path
    processes: list[ServiceProcess]
    keys: dict[str, str]

    def client(self, agency: str = "mappa-humberside") -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.keys[agency]}"}, timeout=10
        )

    def submit(self, reference: str, agency: str = "mappa-humberside", **overrides: Any) -> str:
        with self.client(agency) as client:
            response = client.post(
                "/v1/referrals", json=submission_body(agency_reference=reference, **overrides)
            )
        assert response.status_code == 202, response.text
        return str(response.json()["referral_id"])

    def view(self, referral_id: str, predicate: Any = lambda v: True, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        with self.client() as client:
            while True:
                response = client.get(f"/v1/referrals/{referral_id}")
                if response.status_code == 200 and predicate(response.json()):
                    return dict(response.json())
                assert time.monotonic() < deadline, f"{referral_id}: {response.status_code} {response.text}"
                time.sleep(0.1)

    def history(self, referral_id: str) -> list[dict[str, Any]]:
        with self.client() as client:
            return list(client.get(f"/v1/referrals/{referral_id}/history").json()["events"])

    def cli(self, *args: str, check: bool = True) -> Any:
        return run_cli(self.env, *args, check=check)

    def restart(self) -> None:
        for process in self.processes:
            process.stop()
        for process in self.processes:
            process.start()
        self.wait_ready()

    def wait_ready(self) -> None:
        for process in self.processes:
            if process.process.endswith("worker"):
                process.wait_for_log("worker_ready", occurrences=process.starts)
            else:
                process.wait_http(f"{self.api_url}/ready")


def report(stack: Stack, referral_ids: list[str], seconds: float = 30) -> Report:
    """The commissioner report's figures, from the coordinator's own state as its page reads them, once
    the coordinator has seen a decision on each of ``referral_ids``."""

    async def read() -> tuple[Report, set[str]]:
        views = CoordinatorViews(stack.bootstrap, stack.prefix)
        await views.start()
        try:
            progress = views.referrals()
            figures = build_report(
                progress,
                [],
                views.dead_letters(),
                Period(start=date(2026, 1, 1), end=date(2027, 12, 31)),
                yearly_target=8,
                target_year_starts_month=4,
                holidays=set(),
                now=datetime(2027, 12, 31, tzinfo=UTC),
            )
            return figures, {str(p.referral_id) for p in progress if p.acknowledged_at}
        finally:
            await views.stop()

    deadline = time.monotonic() + seconds
    while True:
        figures, decided = asyncio.run(read())
        if decided >= set(referral_ids):
            return figures
        assert time.monotonic() < deadline, f"the coordinator has not seen {set(referral_ids) - decided}"
        time.sleep(0.2)


async def sealed_records(env: dict[str, str], referral_id: str) -> tuple[list[Any], list[Any]]:
    """Every record of the referral on the worker's command and state topics, as raw as Kafka holds them."""
    bootstrap, prefix = env["KAFKA_BOOTSTRAP_SERVERS"], env["CIRCLES_TOPIC_PREFIX"]
    commands = await consume_all(bootstrap, prefix + REFERRALS_COMMANDS.name)
    state = await consume_all(bootstrap, prefix + REFERRALS_STATE.name)
    mine = referral_id.encode()
    return (
        [r for r in commands if r.key == mine and b"sealed:v1:" in r.value],
        [r for r in state if r.key == mine and r.value and b"sealed:v1:" in r.value],
    )


async def open_all(env: dict[str, str], commands: list[Any], state: list[Any]) -> int:
    """Open each record with the KEK and the keys topic, as any process would; KeyDestroyed if erased."""
    sealer = sealer_for(env, ["referral"])
    await sealer.start()
    try:
        for record in commands:
            _, event = await decode_record(
                record.value, record.headers, {SubmitReferral.event_type: SubmitReferral}, sealer
            )
            assert isinstance(event, SubmitReferral) and event.submission.core_member.given_name
        for record in state:
            await sealer.prepare([record.value])
            assert sealer.parse(ReferralEntry, record.value).record is not None
        return len(commands) + len(state)
    finally:
        await sealer.stop()


async def key_records(env: dict[str, str], dek_ids: set[str]) -> list[Any]:
    """The raw records of the keys topic for these data keys (wrapped keys and tombstones)."""
    records = await consume_all(
        env["KAFKA_BOOTSTRAP_SERVERS"], env["CIRCLES_TOPIC_PREFIX"] + REFERRAL_KEYS.name
    )
    return [r for r in records if r.key and r.key.decode() in dek_ids]


async def compact_keys_topic_soon(bootstrap: str, topic: str) -> None:
    """Test-only: small segments on the keys topic, so the broker's cleaner (2 s back-off on the test
    broker) compacts within seconds what the catalogue's settings compact within a day."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {**REFERRAL_KEYS.config, "segment.ms": "300"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        await admin.close()


async def roll_segment(bootstrap: str, topic: str) -> None:
    """Append a tombstone for a key nobody uses: it closes the segment holding the destroyed keys."""
    sender = producer(bootstrap, client_id="tests-roll")
    await sender.start()
    try:
        await sender.send_and_wait(topic, None, key=f"roll-{uuid.uuid4().hex}".encode())
    finally:
        await sender.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    asyncio.run(compact_keys_topic_soon(kafka_bootstrap, prefix + REFERRAL_KEYS.name))
    data = tmp_path_factory.mktemp("erasure")
    clock_file = data / "now"
    clock_file.write_text(START)
    port = free_port()
    env = service_env(
        kafka_bootstrap, prefix, data, CIRCLES_CLOCK=f"file:{clock_file}", CIRCLES_API_PORT=str(port)
    )
    keys = {}
    for agency in AGENCIES:
        created = run_cli(env, "agency", "add", agency, "--name", f"{agency} (test)", "--json")
        keys[agency] = json.loads(created.stdout)["api_key"]
    processes = [
        ServiceProcess("referrals-worker", env).start(),
        ServiceProcess("referrals-api", env).start(),
        ServiceProcess("coordinator-worker", env).start(),
    ]
    stack = Stack(env, prefix, kafka_bootstrap, f"http://127.0.0.1:{port}", clock_file, processes, keys)
    try:
        stack.wait_ready()
        yield stack
    finally:
        for process in processes:
            process.stop()
    assert leaks("".join(process.logs() for process in processes)) == []


def test_erasure_on_request_keeps_the_facts_and_the_report_and_leaves_nothing_to_decrypt(
    stack: Stack,
) -> None:
    closed = stack.submit("ERASE-CLOSED-1", risk__level="low")  # ineligible: the scheme has answered
    open_ = stack.submit("ERASE-OPEN-1")  # eligible, waiting for a circle
    stack.view(closed, lambda v: v["status"] == "ineligible")
    stack.view(open_, lambda v: v["status"] == "eligible")
    before = report(stack, [closed, open_])
    commands, state = asyncio.run(sealed_records(stack.env, closed))
    assert commands and state
    assert asyncio.run(open_all(stack.env, commands, state)) == len(commands) + len(
        state
    )  # the KEK opens them

    erased = stack.cli("erase", "referral", closed, "--reason", "DSR-2026-041")
    assert erased.stdout.startswith(
        f"Erased referral {closed} (agency mappa-humberside, reference ERASE-CLOSED-1)"
    )
    again = stack.cli("erase", "referral", closed)
    assert again.stdout.startswith(f"Referral {closed} was already erased at ")
    unknown = stack.cli("erase", "referral", str(uuid.uuid4()), check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: no referral ")
    assert len(unknown.stderr.strip().splitlines()) == 1
    malformed = stack.cli("erase", "referral", "not-an-id", check=False)
    assert malformed.returncode == 1 and "is not a referral id" in malformed.stderr

    stack.restart()
    view = stack.view(closed)
    assert (
        view["erased_at"] and view["status"] == "ineligible" and view["decision"]["outcome"] == "ineligible"
    )
    assert view["agency_reference"] == "ERASE-CLOSED-1" and leaks(json.dumps(view)) == []
    history = stack.history(closed)
    assert [entry["type"] for entry in history] == [
        ReferralSubmitted.event_type,
        ReferralAssessed.event_type,
        ReferralErased.event_type,
    ]
    assert history[-1]["summary"] == "Personal data erased on request (DSR-2026-041)."
    with stack.client() as client:
        body = submission_body(agency_reference="ERASE-CLOSED-1", risk__level="low")
        assert client.post("/v1/referrals", json=body).status_code == 409
        assert client.put(f"/v1/referrals/{closed}", json=body).status_code == 409
    after = report(stack, [closed, open_])
    assert after.model_dump(exclude={"generated_at"}) == before.model_dump(exclude={"generated_at"})

    # what Kafka still holds of the referral cannot be opened: its data keys are gone from the keys topic
    for record in commands:
        with pytest.raises(KeyDestroyed):
            asyncio.run(open_all(stack.env, [record], []))
    for record in state:
        with pytest.raises(KeyDestroyed):
            asyncio.run(open_all(stack.env, [], [record]))
    dek_ids = set().union(*(sealed_key_ids(r.value) for r in commands + state))
    topic = stack.prefix + REFERRAL_KEYS.name
    deadline = time.monotonic() + 30
    while wrapped := [r for r in asyncio.run(key_records(stack.env, dek_ids)) if r.value is not None]:
        assert {KeyRecord.model_validate_json(r.value).subject for r in wrapped} == {f"referral:{closed}"}
        assert time.monotonic() < deadline, (
            f"{len(wrapped)} wrapped keys of an erased referral still in the log"
        )
        asyncio.run(roll_segment(stack.bootstrap, topic))
        time.sleep(1)

    # an open referral is withdrawn by its erasure: the report then counts it as withdrawn, nothing else moves
    stack.cli("erase", "referral", open_)
    view = stack.view(open_, lambda v: v["erased_at"] is not None)
    assert view["status"] == "withdrawn"
    assert [entry["type"] for entry in stack.history(open_)] == [
        ReferralSubmitted.event_type,
        ReferralAssessed.event_type,
        ReferralWithdrawn.event_type,
        ReferralErased.event_type,
    ]
    deadline = time.monotonic() + 30
    while (moved := report(stack, [open_])).by_agency[0].withdrawn == before.by_agency[0].withdrawn:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [was], [now] = before.by_agency, moved.by_agency
    assert (now.eligible, now.withdrawn) == (was.eligible - 1, was.withdrawn + 1)
    assert now.model_dump(exclude={"eligible", "withdrawn"}) == was.model_dump(
        exclude={"eligible", "withdrawn"}
    )


def test_retention_apply_erases_what_is_due_and_nothing_else(stack: Stack) -> None:
    old = stack.submit("RETAIN-OLD-1", risk__level="low")
    stack.view(old, lambda v: v["status"] == "ineligible")
    stack.clock_file.write_text("2027-02-23T10:00:00+00:00")  # 91 days later
    try:
        fresh = stack.submit("RETAIN-FRESH-1", risk__level="low")
        stack.view(fresh, lambda v: v["status"] == "ineligible")
        listed = json.loads(stack.cli("retention", "apply", "--dry-run", "--json").stdout)
        assert (
            listed["due"] == [old] and listed["erased"] == []
        )  # the fresh one is not due, erased ones never
        assert stack.view(old)["erased_at"] is None

        applied = json.loads(stack.cli("retention", "apply", "--json").stdout)
        assert (
            applied["due"] == listed["due"] and applied["erased"] == listed["due"] and not applied["failed"]
        )
        view = stack.view(old, lambda v: v["erased_at"] is not None)
        assert view["erased_at"].startswith("2027-02-23")
        assert stack.history(old)[-1]["summary"] == "Personal data erased under the retention policy."
        assert stack.view(fresh)["erased_at"] is None
        text = stack.cli("retention", "apply").stdout
        assert "as of 2027-02-23" in text and text.rstrip().endswith("Erased 0 of 0.")
    finally:
        stack.clock_file.write_text(START)


def test_the_access_log_shows_who_touched_a_referral_and_when(stack: Stack) -> None:
    referral_id = stack.submit("AUDIT-1")
    with stack.client() as client:
        client.headers["X-Correlation-Id"] = "corr-audit-1"
        stack.view(referral_id, lambda v: v["status"] == "eligible")
        assert client.get(f"/v1/referrals/{referral_id}/history").status_code == 200
        assert referral_id in client.get("/v1/referrals").text
    with stack.client("police-mosovo") as other:
        assert other.get(f"/v1/referrals/{referral_id}").status_code == 404  # a probe is recorded too
    stack.cli("erase", "referral", referral_id)

    rows = json.loads(stack.cli("audit", "referral", referral_id, "--json").stdout)
    who = [(row["actor"], row["action"], row["status"]) for row in rows]
    gets = who.count(("agency:mappa-humberside", "get", 200))
    assert gets >= 1  # the test polled until the decision was made
    assert who == [
        ("agency:mappa-humberside", "submit", 202),
        *[("agency:mappa-humberside", "get", 200)] * gets,
        ("agency:mappa-humberside", "history", 200),
        ("agency:mappa-humberside", "list", 200),
        ("agency:police-mosovo", "get", 404),
        (f"cli:{getpass.getuser()}", "erase", None),
    ]
    assert [row["correlation_id"] for row in rows][1 + gets : 3 + gets] == ["corr-audit-1"] * 2
    assert all(row["accessed_at"].startswith("2026-11-24") for row in rows)  # the services' clock
    text = stack.cli("audit", "referral", referral_id).stdout.splitlines()
    assert (
        text[-1] == f"{len(rows)} access(es) to referral {referral_id}."
        and "agency:police-mosovo" in text[-3]
    )

    # the record is written before the answer leaves: what does that cost a read?
    def median_ms(path: str, status: int) -> float:
        with stack.client() as client:
            timings = []
            for _ in range(40):
                started = time.perf_counter()
                assert client.get(path).status_code == status
                timings.append(time.perf_counter() - started)
        return sorted(timings)[len(timings) // 2] * 1000

    recorded = median_ms(f"/v1/referrals/{referral_id}", 200)
    unrecorded = median_ms(f"/v1/referrals/{referral_id}/nothing", 404)  # authenticated, touches nothing
    print(f"GET median: {recorded:.1f} ms with its access record, {unrecorded:.1f} ms for a request without")
    assert recorded < unrecorded + 50
