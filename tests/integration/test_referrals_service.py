"""The referrals service end to end: real worker and API processes, real HTTP, the real broker.

Agencies are registered with the CLI; referrals are submitted over HTTP (and one over Kafka); the worker's
clock reads a file the test moves forward.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.envelope import Envelope, decode
from schemas.events.referrals import (
    ReferralAssessed,
    ReferralSubmitted,
    ReferralWithdrawn,
    WithdrawReferral,
)
from schemas.topics import EVENT_TYPES, REFERRAL_EVENTS, REFERRALS_INBOUND, TOPICS
from services.protection.errors import KeyDestroyed
from services.referrals.domain.referral import referral_id_for
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume, consume_all, wait_drained
from tests.processes import ServiceProcess, free_port, run_cli, sealer_for, service_env
from tests.samples import inbound_record, submission_body

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    api_url: str
    clock_file: Path
    worker: ServiceProcess
    api: ServiceProcess
    keys: dict[str, str]
    signing_keys: dict[str, str]

    def client(self, agency: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.keys[agency]}"}, timeout=10
        )

    def wait_for(
        self, agency: str, referral_id: str, predicate: Any, seconds: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        with self.client(agency) as client:
            while True:
                response = client.get(f"/v1/referrals/{referral_id}")
                if response.status_code == 200 and predicate(response.json()):
                    return dict(response.json())
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"referral {referral_id}: last answer {response.status_code} {response.text}"
                    )
                time.sleep(0.1)

    def wait_for_history(
        self, agency: str, referral_id: str, event_type: str, seconds: float = 30.0
    ) -> list[Any]:
        deadline = time.monotonic() + seconds
        with self.client(agency) as client:
            while True:
                events = client.get(f"/v1/referrals/{referral_id}/history").json()["events"]
                if any(entry["type"] == event_type for entry in events):
                    return list(events)
                assert time.monotonic() < deadline, events
                time.sleep(0.1)

    def events(self) -> list[tuple[Envelope, Any]]:
        records = asyncio.run(consume_all(self.bootstrap, self.prefix + REFERRAL_EVENTS.name))
        return [decode(r.value, r.headers, EVENT_TYPES) for r in records]


async def opened(env: dict[str, str], sealed: bytes) -> bytes:
    sealer = sealer_for(env, ["inbound"])
    await sealer.start()
    try:
        return await sealer.open_bytes(sealed)
    finally:
        await sealer.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    data = tmp_path_factory.mktemp("referrals")
    clock_file = data / "now"
    clock_file.write_text("2026-11-24T10:00:00+00:00")
    port = free_port()
    env = service_env(
        kafka_bootstrap,
        prefix,
        data,
        CIRCLES_CLOCK=f"file:{clock_file}",
        CIRCLES_REASSESS_INTERVAL_S="0.5",
        CIRCLES_API_PORT=str(port),
    )
    keys, signing_keys = {}, {}
    for agency in ("mappa-humberside", "police-mosovo"):
        added = run_cli(env, "agency", "add", agency, "--name", f"{agency} (test)", "--json")
        created = json.loads(added.stdout)
        keys[agency], signing_keys[agency] = created["api_key"], created["kafka_signing_key"]
    worker = ServiceProcess("referrals-worker", env).start()
    api = ServiceProcess("referrals-api", env).start()
    try:
        worker.wait_for_log("worker_ready")
        api.wait_http(f"http://127.0.0.1:{port}/ready")
        url = f"http://127.0.0.1:{port}"
        yield Stack(env, prefix, kafka_bootstrap, url, clock_file, worker, api, keys, signing_keys)
    finally:
        api.stop()
        worker.stop()
    assert leaks(worker.logs() + api.logs()) == []


def test_submit_then_read_status_and_history_as_the_owner_only(stack: Stack) -> None:
    with stack.client("mappa-humberside") as client:
        response = client.post("/v1/referrals", json=submission_body(agency_reference="MAPPA-OWN-1"))
    assert response.status_code == 202, response.text
    referral_id = response.json()["referral_id"]
    view = stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "eligible")
    assert view["decision"]["outcome"] == "eligible" and view["decision"]["reasons"] == []
    with stack.client("mappa-humberside") as client:
        history = client.get(f"/v1/referrals/{referral_id}/history").json()["events"]
    assert [entry["type"] for entry in history] == [ReferralSubmitted.event_type, ReferralAssessed.event_type]
    with stack.client("police-mosovo") as other:
        assert other.get(f"/v1/referrals/{referral_id}").status_code == 404
        assert other.get(f"/v1/referrals/{referral_id}/history").status_code == 404
        assert referral_id not in other.get("/v1/referrals").text

    published = [(env, event) for env, event in stack.events() if str(event.referral_id) == referral_id]
    assert {type(event) for _, event in published} >= {ReferralSubmitted, ReferralAssessed}
    correlation = response.headers["x-correlation-id"]
    assert all(envelope.correlationid == correlation for envelope, _ in published)
    for _, event in published:
        assert leaks(event.model_dump_json()) == []


def test_duplicate_and_conflicting_resubmissions(stack: Stack) -> None:
    body = submission_body(agency_reference="MAPPA-DUP-1")
    with stack.client("mappa-humberside") as client:
        first = client.post("/v1/referrals", json=body)
        referral_id = first.json()["referral_id"]
        stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "eligible")
        again = client.post("/v1/referrals", json=body)
        conflict = client.post(
            "/v1/referrals", json=submission_body(agency_reference="MAPPA-DUP-1", risk__level="medium")
        )
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["referral_id"] == referral_id
    assert conflict.status_code == 409 and conflict.json()["links"]["amend"].endswith(referral_id)
    wait_drained(stack.bootstrap, stack.prefix, "referrals")  # a duplicate would be on the topic by now
    submitted = [
        e for _, e in stack.events() if isinstance(e, ReferralSubmitted) and str(e.referral_id) == referral_id
    ]
    assert len(submitted) == 1


def test_a_deferred_referral_becomes_eligible_when_the_clock_moves(stack: Stack) -> None:
    body = submission_body(agency_reference="MAPPA-DEFER-1", custody__expected_release_date="2027-09-30")
    with stack.client("mappa-humberside") as client:
        referral_id = client.post("/v1/referrals", json=body).json()["referral_id"]
    view = stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "deferred")
    assert view["decision"]["reasons"][0]["code"] == "release_outside_window"
    assert view["decision"]["reassess_on"] == "2027-03-30"
    stack.clock_file.write_text("2027-03-30T08:00:00+00:00")
    view = stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "eligible")
    with stack.client("mappa-humberside") as client:
        history = client.get(f"/v1/referrals/{referral_id}/history").json()["events"]
    assert "Re-assessed" in history[-1]["summary"]
    stack.clock_file.write_text("2026-11-24T10:00:00+00:00")


def test_missing_information_is_supplied_by_a_new_version(stack: Stack) -> None:
    body = submission_body(agency_reference="MAPPA-INFO-1", custody__expected_release_date=None)
    with stack.client("mappa-humberside") as client:
        referral_id = client.post("/v1/referrals", json=body).json()["referral_id"]
        stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "needs_information")
        amended = client.put(
            f"/v1/referrals/{referral_id}", json=submission_body(agency_reference="MAPPA-INFO-1")
        )
    assert amended.status_code == 200
    view = stack.wait_for("mappa-humberside", referral_id, lambda v: v["version"] == 2 and v["decision"])
    assert view["status"] == "eligible"


def test_withdrawal(stack: Stack) -> None:
    with stack.client("mappa-humberside") as client:
        referral_id = client.post(
            "/v1/referrals", json=submission_body(agency_reference="MAPPA-WD-1")
        ).json()["referral_id"]
        stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "eligible")
        assert (
            client.post(f"/v1/referrals/{referral_id}/withdrawal", json={"reason": "moved away"}).status_code
            == 200
        )
        stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "withdrawn")
        assert (
            client.put(
                f"/v1/referrals/{referral_id}", json=submission_body(agency_reference="MAPPA-WD-1")
            ).status_code
            == 409
        )
    withdrawn = [
        e for _, e in stack.events() if isinstance(e, ReferralWithdrawn) and str(e.referral_id) == referral_id
    ]
    assert len(withdrawn) == 1 and "moved away" not in withdrawn[0].model_dump_json()


def test_agency_systems_may_submit_over_kafka_with_the_same_validation(stack: Stack) -> None:
    key = stack.signing_keys["police-mosovo"]
    good = inbound_record(
        "police-mosovo", key, submission_body(agency_reference="POLICE-KAFKA-1"), correlation_id="kafka-1"
    )
    broken = submission_body(agency_reference="POLICE-KAFKA-2", risk__level="extreme")
    bad = inbound_record("police-mosovo", key, broken, correlation_id="kafka-2")

    async def produce() -> None:
        async with Publisher(stack.bootstrap, "/agencies/police-mosovo", prefix=stack.prefix) as publisher:
            for record_key, value, headers in (good, bad):
                await publisher.send_raw(stack.prefix + REFERRALS_INBOUND.name, value, record_key, headers)

    asyncio.run(produce())
    with stack.client("police-mosovo") as client:
        deadline = time.monotonic() + 30
        while not (listed := client.get("/v1/referrals").json()["referrals"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert [r["agency_reference"] for r in listed] == ["POLICE-KAFKA-1"]
    dead = asyncio.run(consume(stack.bootstrap, stack.prefix + REFERRALS_INBOUND.dlq, 1))
    reason = dict(dead[0].headers)["dlq_error"].decode()
    assert "risk.level" in reason and "extreme" not in reason
    # the agency's plain personal data is sealed whole in the dead letter, under a key of its own
    assert dead[0].value.startswith(b"sealed:v1:") and leaks(dead[0].value.decode()) == []
    assert asyncio.run(opened(stack.env, dead[0].value)) == bad[1]


def test_inbound_dead_letters_are_erased_with_their_referral_and_sealed_looking_fields_refused(
    stack: Stack,
) -> None:
    """Issue 14, finding 6: a dead-lettered inbound record is sealed under its referral's data key (erasing
    the referral destroys it), and a field that looks sealed is dead-lettered, not silently skipped."""
    key = stack.signing_keys["police-mosovo"]
    good = submission_body(agency_reference="POLICE-ERASE-1")
    broken = submission_body(agency_reference="POLICE-ERASE-1", risk__level="extreme")
    forged = submission_body(agency_reference="POLICE-SEALED-1")
    forged["notes"] = "sealed:v1:" + "ab" * 16 + ":AAAA"

    async def produce(*bodies: dict[str, Any]) -> None:
        async with Publisher(stack.bootstrap, "/agencies/police-mosovo", prefix=stack.prefix) as publisher:
            for n, body in enumerate(bodies):
                record_key, value, headers = inbound_record(
                    "police-mosovo", key, body, correlation_id=f"kafka-erase-{n}"
                )
                await publisher.send_raw(stack.prefix + REFERRALS_INBOUND.name, value, record_key, headers)

    asyncio.run(produce(good))
    referral_id = str(referral_id_for("police-mosovo", "POLICE-ERASE-1"))
    stack.wait_for_history("police-mosovo", referral_id, ReferralAssessed.event_type)
    asyncio.run(produce(broken, forged))

    def dead_letters() -> dict[str, Any]:
        records = asyncio.run(consume_all(stack.bootstrap, stack.prefix + REFERRALS_INBOUND.dlq))
        found = {}
        for record in records:
            error = dict(record.headers)["dlq_error"].decode()
            if "looks sealed" in error:
                found["forged"] = record
            elif "risk.level" in error and b"POLICE-ERASE-1" in asyncio.run(opened_or_none(record.value)):
                found["broken"] = record
        return found

    async def opened_or_none(value: bytes) -> bytes:
        try:
            return await opened(stack.env, value)
        except KeyDestroyed:
            return b""

    deadline = time.monotonic() + 30
    while len(found := dead_letters()) < 2:
        assert time.monotonic() < deadline, found
        time.sleep(0.5)
    assert leaks(found["forged"].value.decode()) == [] and found["forged"].value.startswith(b"sealed:v1:")
    with stack.client("police-mosovo") as client:
        listed = [r["agency_reference"] for r in client.get("/v1/referrals").json()["referrals"]]
    assert "POLICE-SEALED-1" not in listed
    run_cli(stack.env, "erase", "referral", referral_id, "--reason", "DSR-TEST-6")
    with pytest.raises(KeyDestroyed):  # the dead letter went with the referral's data key
        asyncio.run(opened(stack.env, found["broken"].value))


def test_a_rotated_key_replaces_the_old_one(stack: Stack) -> None:
    old = stack.keys["police-mosovo"]
    rotated = run_cli(stack.env, "agency", "rotate-key", "police-mosovo", "--json")
    new = json.loads(rotated.stdout)["api_key"]
    assert new != old
    assert json.loads(rotated.stdout)["kafka_signing_key"] != stack.signing_keys["police-mosovo"]
    stack.signing_keys["police-mosovo"] = json.loads(rotated.stdout)["kafka_signing_key"]
    deadline = time.monotonic() + 15
    while True:
        refused = httpx.get(f"{stack.api_url}/v1/referrals", headers={"Authorization": f"Bearer {old}"})
        if refused.status_code == 401:
            break
        assert time.monotonic() < deadline, "the old key still works"
        time.sleep(0.1)
    accepted = httpx.get(f"{stack.api_url}/v1/referrals", headers={"Authorization": f"Bearer {new}"})
    assert accepted.status_code == 200
    stack.keys["police-mosovo"] = new
    unknown = run_cli(stack.env, "agency", "rotate-key", "no-such-agency", check=False)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "Error: no agency no-such-agency"
    bad = run_cli(stack.env, "agency", "add", "Not An Id", "--name", "x", check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "agency_id" in bad.stderr


def test_state_survives_a_restart_of_both_processes(stack: Stack) -> None:
    with stack.client("mappa-humberside") as client:
        before = client.get("/v1/referrals").json()["referrals"]
    assert before
    stack.api.stop()
    stack.worker.stop()
    stack.worker.start()
    stack.api.start()
    stack.worker.wait_for_log("worker_ready", occurrences=2)
    stack.api.wait_http(f"{stack.api_url}/ready")
    with stack.client("mappa-humberside") as client:
        after = client.get("/v1/referrals").json()["referrals"]
        assert after == before
        referral_id = client.post(
            "/v1/referrals", json=submission_body(agency_reference="MAPPA-AFTER-1")
        ).json()["referral_id"]
    stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "eligible")


def test_an_amendment_the_worker_refuses_does_not_stay_pending(stack: Stack) -> None:
    """Issue 15: another channel withdraws the referral before the worker reaches this API's amendment
    (the worker is stopped meanwhile, so the API cannot have seen the withdrawal): the worker refuses the
    amendment, and the API shows the withdrawal instead of a version that will never come."""
    body = submission_body(agency_reference="MAPPA-REFUSED-1", custody__expected_release_date=None)
    with stack.client("mappa-humberside") as client:
        referral_id = client.post("/v1/referrals", json=body).json()["referral_id"]
    stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "needs_information")
    started = stack.worker.logs().count("worker_ready")
    stack.worker.stop()
    withdrawal = WithdrawReferral(
        referral_id=uuid.UUID(referral_id),
        agency_id="mappa-humberside",
        reason="moved away",
        received_at=datetime.now(UTC),
    )

    async def withdraw_elsewhere() -> None:
        sealer = sealer_for(stack.env, ["referral"])
        await sealer.start()
        try:
            async with Publisher(
                stack.bootstrap, "/circles/referrals/api", prefix=stack.prefix, sealer=sealer
            ) as publisher:
                await publisher.publish(
                    withdrawal, publisher.envelope(withdrawal, correlation_id="other-api")
                )
        finally:
            await sealer.stop()

    asyncio.run(withdraw_elsewhere())
    amended = submission_body(agency_reference="MAPPA-REFUSED-1")
    with stack.client("mappa-humberside") as client:
        assert client.put(f"/v1/referrals/{referral_id}", json=amended).json()["status"] == "received"
        assert client.get(f"/v1/referrals/{referral_id}").json()["version"] == 2  # pending
    stack.worker.start()
    stack.worker.wait_for_log("worker_ready", occurrences=started + 1)
    view = stack.wait_for("mappa-humberside", referral_id, lambda v: v["status"] == "withdrawn", 60)
    assert view["version"] == 1
    with stack.client("mappa-humberside") as client:
        assert client.put(f"/v1/referrals/{referral_id}", json=amended).status_code == 409  # withdrawn
