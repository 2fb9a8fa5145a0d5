"""Operations end to end: real worker and API processes on the real broker, scraped and inspected the way an
operator would: ``/health``, ``/ready``, ``/metrics`` and ``circles ops status|dlq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.events.referrals import SubmitReferral
from schemas.events.volunteers import ChangeVolunteer
from schemas.topics import REFERRALS_COMMANDS, TOPICS, VOLUNTEER_COMMANDS, VOLUNTEERS
from services.referrals.domain.referral import referral_id_for
from services.runtime.kafka import Publisher, create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume, consume_all, wait_drained
from tests.processes import ServiceProcess, free_port, run_cli, sealing_publisher, service_env
from tests.samples import submission, submission_body

pytestmark = pytest.mark.integration
AGENCY = "mappa-humberside"
STREAM_FAMILIES = {
    "circles_events_in": "counter",
    "circles_events_out": "counter",
    "circles_processing_seconds": "histogram",
    "circles_errors": "counter",
    "circles_dead_letters": "counter",
    "circles_consumer_lag": "gauge",
}
CHECK = ("ops", "status", "--check", "--service", "referrals", "--interval", "1")
HTTP_FAMILIES = {"circles_http_requests": "counter", "circles_http_request_seconds": "histogram"}


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    api_key: str
    referrals: ServiceProcess
    referrals_port: int
    matching: ServiceProcess
    matching_port: int
    api: ServiceProcess
    api_url: str
    api_metrics_port: int

    def probe(self, port: int, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)

    def status(self) -> dict[str, Any]:
        return dict(json.loads(run_cli(self.env, "ops", "status", "--json").stdout))

    def ops(self, *args: str) -> Any:
        return json.loads(run_cli(self.env, "ops", "dlq", *args, "--json").stdout)

    def publish(self, *commands: Any) -> list[str]:
        """Publish commands; returns their event ids."""

        async def go() -> list[str]:
            async with sealing_publisher(self.env, "/circles/ops-test") as publisher:
                ids = []
                for command in commands:
                    envelope = publisher.envelope(command, f"ops-test-{uuid.uuid4().hex[:8]}")
                    await publisher.publish(command, envelope)
                    ids.append(str(envelope.id))
                return ids

        return asyncio.run(go())

    def publish_raw(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        async def go() -> None:
            async with Publisher(self.bootstrap, "/circles/ops-test", prefix=self.prefix) as publisher:
                await publisher.send_raw(self.prefix + topic, value, key=b"by-hand", headers=headers)

        asyncio.run(go())


def submit(reference: str, **overrides: Any) -> SubmitReferral:
    body = submission(agency_reference=reference, **overrides)
    return SubmitReferral(
        referral_id=referral_id_for(AGENCY, reference),
        agency_id=AGENCY,
        submission=body,
        fingerprint=body.fingerprint(),
        received_at=datetime.now(UTC),
    )


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(found: dict[str, Any], family: str, suffix: str = "", **labels: str) -> list[Any]:
    return [
        sample
        for sample in found[family].samples
        if sample.name == family + suffix and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def total(found: dict[str, Any], family: str, suffix: str = "", **labels: str) -> float:
    return float(sum(sample.value for sample in samples(found, family, suffix, **labels)))


def eventually(check: Any, seconds: float = 30.0, every: float = 0.2) -> Any:
    """``check()``'s value once it returns; until the deadline it is tried again whatever it raised (a
    failed assertion, a CLI that failed, a broker not answering yet), then its last error is raised."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(every)


def wait_ready(process: ServiceProcess, port: int, seconds: float = 60.0) -> list[int]:
    """Poll /ready until 200; returns every status seen (503s first while joining or recovering)."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.alive(), process.tail()
        with contextlib.suppress(httpx.HTTPError):
            seen.append(httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code)
        if seen and seen[-1] == 200:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{process.name} not ready: {seen[-5:]}\n{process.tail()}")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    env = service_env(kafka_bootstrap, prefix, tmp_path_factory.mktemp("ops"))
    created = run_cli(env, "agency", "add", AGENCY, "--name", "MAPPA (ops test)", "--json")
    ports = {name: free_port() for name in ("referrals", "matching", "api", "api-metrics")}
    referrals = ServiceProcess("referrals-worker", {**env, "CIRCLES_HEALTH_PORT": str(ports["referrals"])})
    matching = ServiceProcess("matching-worker", {**env, "CIRCLES_HEALTH_PORT": str(ports["matching"])})
    api = ServiceProcess(
        "referrals-api",
        {**env, "CIRCLES_API_PORT": str(ports["api"]), "CIRCLES_HEALTH_PORT": str(ports["api-metrics"])},
    )
    processes = [referrals.start(), matching.start(), api.start()]
    try:
        wait_ready(referrals, ports["referrals"])
        wait_ready(matching, ports["matching"])
        api.wait_http(f"http://127.0.0.1:{ports['api']}/ready")
        yield Stack(
            env,
            prefix,
            kafka_bootstrap,
            json.loads(created.stdout)["api_key"],
            referrals,
            ports["referrals"],
            matching,
            ports["matching"],
            api,
            f"http://127.0.0.1:{ports['api']}",
            ports["api-metrics"],
        )
    finally:
        for process in processes:
            process.stop()
    assert leaks("".join(process.logs() for process in processes)) == []


def test_worker_metrics_after_traffic_hold_every_family(stack: Stack) -> None:
    assert stack.probe(stack.referrals_port, "/health").json()["status"] == "alive"
    stack.publish(*(submit(f"OPS-M-{n}") for n in range(5)))
    stack.publish_raw(REFERRALS_COMMANDS.name, b"not an event", [])
    commands = stack.prefix + REFERRALS_COMMANDS.name

    def scraped() -> dict[str, Any]:
        found = families(stack.probe(stack.referrals_port, "/metrics").text)
        assert total(found, "circles_events_in", "_total", topic=commands) >= 6
        assert total(found, "circles_dead_letters", "_total", topic=commands) >= 1
        lags = samples(found, "circles_consumer_lag", topic=commands)  # every partition, once fetched from
        assert len(lags) == REFERRALS_COMMANDS.partitions and {s.value for s in lags} == {0.0}
        return found

    found = eventually(scraped)
    assert {name: found[name].type for name in {**STREAM_FAMILIES, **HTTP_FAMILIES}} == {
        **STREAM_FAMILIES,
        **HTTP_FAMILIES,
    }
    assert all(
        s.labels["service"] == "referrals-worker" for name in STREAM_FAMILIES for s in found[name].samples
    )
    assert (
        total(found, "circles_events_out", "_total", topic=stack.prefix + "circles.referrals.events.v1") >= 10
    )
    assert total(found, "circles_errors", "_total", kind="undecodable") >= 1
    buckets = samples(found, "circles_processing_seconds", "_bucket", topic=commands)
    assert len(buckets) > 5 and any(s.labels["le"] == "+Inf" and s.value >= 6 for s in buckets)


def test_api_metrics_count_requests_by_route_and_commands_out(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        accepted = client.post(
            "/v1/referrals", json=submission_body(agency_reference="OPS-API-1"), headers=headers
        )
        assert accepted.status_code == 202, accepted.text
        assert client.get(f"/v1/referrals/{uuid.uuid4()}").status_code == 401
        assert client.get(f"/v1/referrals/{uuid.uuid4()}", headers=headers).status_code == 404
        assert client.get("/metrics").status_code == 404  # never on the public listener (issue 14, 7)
    found = families(stack.probe(stack.api_metrics_port, "/metrics").text)  # on its own
    assert stack.probe(stack.api_metrics_port, "/ready").status_code == 200
    assert {name: found[name].type for name in {**STREAM_FAMILIES, **HTTP_FAMILIES}} == {
        **STREAM_FAMILIES,
        **HTTP_FAMILIES,
    }
    requests = "circles_http_requests"
    assert total(found, requests, "_total", method="POST", route="/v1/referrals", status="202") == 1
    assert total(found, requests, "_total", route="/v1/referrals/{referral_id}", status="401") == 1
    assert total(found, requests, "_total", route="/v1/referrals/{referral_id}", status="404") == 1
    assert all(s.labels["service"] == "referrals-api" for s in found[requests].samples)
    assert samples(found, "circles_http_request_seconds", "_bucket", route="/v1/referrals")
    assert total(found, "circles_events_out", "_total", topic=stack.prefix + REFERRALS_COMMANDS.name) == 1


def test_dead_letters_are_shown_without_their_payload_unless_asked(stack: Stack) -> None:
    first = submit("OPS-DL-1")
    conflicting = submit("OPS-DL-1", risk__level="medium")  # same reference, other body: refused
    _, refused_id = stack.publish(first, conflicting)

    def shown() -> dict[str, Any]:
        letters = stack.ops("show", REFERRALS_COMMANDS.name, "--limit", "10")
        (letter,) = [letter for letter in letters if letter["ce_id"] == refused_id]
        return dict(letter)

    letter = eventually(shown)
    assert letter["dlq_service"] == "referrals" and letter["dlq_error"].startswith("SubmissionConflict")
    assert letter["original_topic"] == stack.prefix + REFERRALS_COMMANDS.name
    assert letter["ce_type"] == SubmitReferral.event_type and letter["payload"] is None
    plain = run_cli(stack.env, "ops", "dlq", "show", REFERRALS_COMMANDS.name)
    assert refused_id in plain.stdout and leaks(plain.stdout + plain.stderr) == []
    with_payload = run_cli(stack.env, "ops", "dlq", "show", REFERRALS_COMMANDS.name, "--payload")
    assert "OPS-DL-1" in with_payload.stdout and "personal data" in with_payload.stderr
    # even then, personal fields stay sealed: operations tools hold no data keys
    assert "sealed:v1:" in with_payload.stdout and leaks(with_payload.stdout) == []
    bad = run_cli(stack.env, "ops", "dlq", "show", "circles.nope.v1", check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1


def test_dead_letter_replay_after_a_fix_applies_the_change_exactly_once(stack: Stack) -> None:
    volunteer = f"vol-ops-{uuid.uuid4().hex[:6]}"
    vetted_on = datetime.now(UTC).date() - timedelta(days=10)
    change = ChangeVolunteer(volunteer_id=volunteer, change="vetted", on=vetted_on, requested_by="ops-test")
    (command_id,) = stack.publish(change)  # the volunteer does not exist yet: dead-lettered with the reason
    dlq = VOLUNTEER_COMMANDS.dlq
    (dead,) = asyncio.run(consume(stack.bootstrap, stack.prefix + dlq, 1))
    assert dict(dead.headers)["ce_id"].decode() == command_id
    stack.publish_raw(dlq, b"{}", [("ce_id", b"put-here-by-hand")])  # no known origin: must be skipped

    (queue,) = [queue for queue in stack.ops("list") if queue["topic"] == dlq]
    assert queue["depth"] == 2 and queue["pending"] == 2
    assert queue["by_reason"][f"no volunteer {volunteer}"] == 1
    matching = next(s for s in stack.status()["services"] if s["service"] == "matching")
    assert (
        next(t for t in matching["topics"] if t["topic"] == VOLUNTEER_COMMANDS.name)["dead_letters_pending"]
        == 2
    )

    run_cli(
        stack.env,
        "volunteer",
        "add",
        volunteer,
        "--name",
        "Ada Placeholder",
        "--gender",
        "female",
        "--local-authority",
        "hull",
        "--postcode-district",
        "HU7",
    )  # the fix
    dry = stack.ops("replay", dlq, "--dry-run")
    assert dry["replayed"] == 1 and dry["dry_run"]
    report = stack.ops("replay", VOLUNTEER_COMMANDS.name)
    assert report["replayed"] == 1 and report["republished_to"] == {stack.prefix + VOLUNTEER_COMMANDS.name: 1}
    assert [skipped["offset"] for skipped in report["skipped"]] == [1]

    def caused_by_command() -> list[Any]:
        records = asyncio.run(consume_all(stack.bootstrap, stack.prefix + VOLUNTEERS.name))
        return [r for r in records if dict(r.headers).get("ce_causationid", b"").decode() == command_id]

    (applied,) = eventually(lambda: caused_by_command() or pytest.fail("not applied yet"), 30)
    assert dict(applied.headers)["ce_type"] == b"circles.volunteer.vetted.v1"
    again = stack.ops("replay", dlq)
    assert again["replayed"] == 0 and again["already_replayed"] == 2 and again["skipped"] == []
    wait_drained(stack.bootstrap, stack.prefix, "matching")  # a repeated change would be applied by now
    assert len(caused_by_command()) == 1
    (queue,) = [queue for queue in stack.ops("list") if queue["topic"] == dlq]
    assert queue["depth"] == 2 and queue["pending"] == 0


def test_status_shows_lag_growing_while_a_worker_is_down_and_draining_after_restart(stack: Stack) -> None:
    def referrals() -> tuple[int, dict[str, Any]]:
        status = stack.status()
        service = next(s for s in status["services"] if s["service"] == "referrals")
        topic = next(t for t in service["topics"] if t["topic"] == REFERRALS_COMMANDS.name)
        return int(topic["lag"]), {**service, "commands": topic, "problems": status["problems"]}

    def drained() -> dict[str, Any]:
        lag, service = referrals()
        assert lag == 0 and service["active_members"] == 1, service
        return service

    eventually(drained)
    stack.referrals.stop()
    stack.publish(*(submit(f"OPS-LAG-A{n}") for n in range(4)))
    lag_1, _ = referrals()
    stack.publish(*(submit(f"OPS-LAG-B{n}") for n in range(3)))
    lag_2, service = referrals()
    assert (lag_1, lag_2) == (4, 7)
    assert service["active_members"] == 0 and any(
        p.startswith("referrals: no worker") for p in service["problems"]
    )
    assert service["commands"]["last_event_age_s"] < 30 and service["commands"]["committed"] is not None
    down = run_cli(stack.env, *CHECK, check=False)  # the monitoring check sees the same
    assert down.returncode == 2, down.stdout + down.stderr
    lines = down.stdout.splitlines()
    group = f"{stack.prefix}circles-referrals"
    assert lines[0] == f"CRITICAL: referrals: no worker running (group {group} is Empty)"
    assert re.fullmatch(r"WARNING: referrals: lag 7 and nothing processed in \d+s", lines[1]), lines
    waiting = lines[2:]  # the other tests' dead letters, if they ran first
    assert all(line.endswith("dead letter(s) not replayed") for line in waiting), lines

    stack.referrals.start()
    wait_ready(stack.referrals, stack.referrals_port)
    service = eventually(drained, 30)
    up = run_cli(stack.env, *CHECK, check=False)
    if waiting:
        assert (up.returncode, up.stdout.splitlines()) == (1, waiting)
    else:
        assert up.returncode == 0 and up.stdout.startswith("OK: referrals:"), up.stdout + up.stderr
    assert service["group_state"] == "Stable" and service["commands"]["end_offset"] >= 7
    text = run_cli(stack.env, "ops", "status").stdout
    assert "referrals: group" in text and REFERRALS_COMMANDS.name in text


def test_ready_is_503_until_a_restarted_worker_has_its_partitions(stack: Stack) -> None:
    """After a crash the group waits for the dead member's session to time out (6 s here) before it
    assigns partitions to the new process: alive all along, ready only then."""
    stack.referrals.kill()
    stack.referrals.start()
    started = time.monotonic()
    seen = wait_ready(stack.referrals, stack.referrals_port)
    assert 503 in seen and seen[-1] == 200 and time.monotonic() - started > 3, seen  # not before the timeout
    assert stack.probe(stack.referrals_port, "/health").status_code == 200
