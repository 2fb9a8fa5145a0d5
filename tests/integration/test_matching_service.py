"""The matching service end to end over the real broker: volunteers registered with the CLI, referrals
assessed eligible upstream by a real referrals worker, proposals out, reject and accept in, circles
formed, and a waiting referral matched once a new volunteer completes training."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.envelope import decode
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed, VolunteerReminderDue
from schemas.events.referrals import SubmitReferral
from schemas.topics import EVENT_TYPES, MATCHING_EVENTS, REFERRALS_STATE, TOPICS
from services.referrals.domain.referral import ReferralEntry, referral_id_for
from services.runtime.cli_support import os_user_id
from services.runtime.kafka import create_topics
from tests.conftest import leaks
from tests.kafka_helpers import consume_all, wait_drained
from tests.processes import (
    ServiceProcess,
    free_port,
    read_sealed_table,
    run_cli,
    sealing_publisher,
    service_env,
)
from tests.samples import submission

pytestmark = pytest.mark.integration
TOKEN = "synthetic-coordinator-token"


@dataclass
class Stack:
    env: dict[str, str]
    clock: Path
    prefix: str
    bootstrap: str
    referrals: ServiceProcess
    matching: ServiceProcess
    api: ServiceProcess
    api_url: str

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args).stdout

    def cli_all(self, commands: list[list[str]]) -> None:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda args: self.cli(*args), commands))

    def submit(self, reference: str, **overrides: Any) -> uuid.UUID:
        body = submission(agency_reference=reference, **overrides)
        referral_id = referral_id_for("mappa-humberside", reference)
        command = SubmitReferral(
            referral_id=referral_id,
            agency_id="mappa-humberside",
            submission=body,
            fingerprint=body.fingerprint(),
            received_at=datetime.now(UTC),
        )

        async def send() -> None:
            async with sealing_publisher(self.env, "/tests/agency") as publisher:
                await publisher.publish(command, publisher.envelope(command, f"corr-{reference}"))

        asyncio.run(send())
        return referral_id

    def proposals(self, status: str | None = None) -> list[dict[str, Any]]:
        args = ["proposal", "list", "--json", *(["--status", status] if status else [])]
        return list(json.loads(self.cli(*args)))

    def wait_for_proposal(
        self, referral_id: uuid.UUID, attempt: int = 1, seconds: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for proposal in self.proposals("open"):
                if proposal["referral_id"] == str(referral_id) and proposal["attempt"] == attempt:
                    return proposal
            time.sleep(0.3)
        raise AssertionError(f"no open proposal {attempt} for {referral_id}:\n{self.matching.tail()}")

    def referral_status(self, referral_id: uuid.UUID) -> str | None:
        entries = asyncio.run(read_sealed_table(self.env, REFERRALS_STATE.name, ReferralEntry))
        entry = entries.get(str(referral_id))
        return entry.record.status.value if entry and entry.record else None

    def wait_for_status(self, referral_id: uuid.UUID, status: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while (current := self.referral_status(referral_id)) != status:
            assert time.monotonic() < deadline, f"{referral_id} is {current}, not {status}"
            time.sleep(0.3)

    def matching_events(self) -> list[Any]:
        records = asyncio.run(consume_all(self.bootstrap, self.prefix + MATCHING_EVENTS.name))
        return [decode(r.value, r.headers, EVENT_TYPES) for r in records]


def ready_volunteer(
    volunteer_id: str, gender: str, area: str = "hull", district: str = "HU7"
) -> list[list[str]]:
    return [
        [
            "volunteer",
            "add",
            volunteer_id,
            "--name",
            f"Synthetic {volunteer_id}",
            "--gender",
            gender,
            "--local-authority",
            area,
            "--postcode-district",
            district,
            "--max-circles",
            "1",
        ],
    ]


def make_ready(volunteer_id: str) -> list[list[str]]:
    return [
        ["volunteer", "vetted", volunteer_id, "--dbs-date", "2026-01-10"],
        ["volunteer", "trained", volunteer_id, "--date", "2026-02-01"],
        ["volunteer", "supervised", volunteer_id, "--date", "2026-11-01"],
    ]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    data = tmp_path_factory.mktemp("matching")
    clock = data / "now"
    clock.write_text("2026-11-24T10:00:00+00:00")
    port = free_port()
    env = service_env(
        kafka_bootstrap,
        prefix,
        data,
        CIRCLES_CLOCK=f"file:{clock}",
        CIRCLES_MATCHING_API_PORT=str(port),
        CIRCLES_COORDINATOR_API_TOKEN=TOKEN,
        CIRCLES_REMINDER_INTERVAL_S="0.5",
    )
    referrals = ServiceProcess("referrals-worker", env).start()
    matching = ServiceProcess("matching-worker", env).start()
    api = ServiceProcess("matching-api", env).start()
    api_url = f"http://127.0.0.1:{port}"
    try:
        referrals.wait_for_log("worker_ready")
        matching.wait_for_log("worker_ready")
        api.wait_http(f"{api_url}/ready")
        yield Stack(env, clock, prefix, kafka_bootstrap, referrals, matching, api, api_url)
    finally:
        api.stop()
        matching.stop()
        referrals.stop()
    assert leaks(matching.logs() + referrals.logs() + api.logs()) == []


def test_proposals_decisions_circles_and_a_waiting_referral(stack: Stack) -> None:
    volunteers = [("ann", "female"), ("bob", "male"), ("cat", "female"), ("dan", "male"), ("eve", "female")]
    stack.cli_all([cmd for v, g in volunteers for cmd in ready_volunteer(v, g)])
    stack.cli_all([cmd for v, _ in volunteers for cmd in make_ready(v)])
    listed = {v["volunteer_id"]: v for v in json.loads(stack.cli("volunteer", "list", "--json"))}
    assert all(listed[v]["matchable"] for v, _ in volunteers)

    first = stack.submit("MATCH-1")
    proposal = stack.wait_for_proposal(first)
    chosen = [v["volunteer_id"] for v in proposal["volunteers"]]
    assert len(chosen) == 4 and all(v["reasons"] for v in proposal["volunteers"])
    assert {r["code"] for r in proposal["volunteers"][0]["reasons"]} >= {
        "vetted",
        "trained",
        "supervised",
        "capacity",
    }
    assert [p["volunteer_id"] for p in proposal["passed_over"]] == [
        v for v, _ in volunteers if v not in chosen
    ]
    stack.wait_for_status(first, "proposed")
    held = {v["volunteer_id"]: v for v in json.loads(stack.cli("volunteer", "list", "--json"))}
    assert all(held[v]["open_proposals"] == [proposal["proposal_id"]] for v in chosen)

    rejected = chosen[0]
    stack.cli(
        "proposal", "reject", proposal["proposal_id"], "--volunteer", rejected, "--note", "knows the family"
    )
    second = stack.wait_for_proposal(first, attempt=2)
    assert rejected not in [v["volunteer_id"] for v in second["volunteers"]]
    refused = run_cli(stack.env, "proposal", "accept", proposal["proposal_id"], check=False)
    assert refused.returncode == 1 and "already rejected" in refused.stderr

    accepted = stack.cli(
        "proposal", "accept", second["proposal_id"], "--note", "good fit", "--by", "coordinator-lee"
    )
    assert f"the circle is formed (circle-{first})" in accepted  # as `circles circle show` takes it
    stack.wait_for_status(first, "circle_formed")
    listed = json.loads(stack.cli("proposal", "list", "--json"))
    deciders = {p["proposal_id"]: p["decided_by"] for p in listed}
    assert deciders[proposal["proposal_id"]] == os_user_id()  # the OS user running the command: cli-<user>
    assert deciders[second["proposal_id"]] == "coordinator-lee"
    assert "(decided by coordinator-lee)" in stack.cli("proposal", "list", "--status", "accepted")
    formed = [e for _, e in stack.matching_events() if isinstance(e, CircleFormed) and e.referral_id == first]
    assert len(formed) == 1 and formed[0].circles_formed_in_year == 1 and formed[0].yearly_target == 8
    after = {v["volunteer_id"]: v for v in json.loads(stack.cli("volunteer", "list", "--json"))}
    in_circle = [v["volunteer_id"] for v in second["volunteers"]]
    assert all(after[v]["circles"] == [f"circle-{first}"] and not after[v]["matchable"] for v in in_circle)

    waiting = stack.submit("MATCH-2", risk__level="very-high")
    stack.wait_for_status(waiting, "awaiting_volunteers")
    deferred = [
        e for _, e in stack.matching_events() if isinstance(e, MatchDeferred) and e.referral_id == waiting
    ]
    assert len(deferred) == 1 and deferred[0].reasons[0].code == "too_few_volunteers"

    newcomers = [("fay", "female"), ("gus", "male"), ("hal", "male")]
    stack.cli_all([cmd for v, g in newcomers for cmd in ready_volunteer(v, g)])
    stack.cli_all(
        [cmd for v, _ in newcomers for cmd in make_ready(v)[:1] + make_ready(v)[2:]]
    )  # vetted, supervised
    wait_drained(stack.bootstrap, stack.prefix, "matching")  # the changes are applied, the pool matched
    assert stack.referral_status(waiting) == "awaiting_volunteers"  # not trained yet: still waiting
    stack.cli_all([make_ready(v)[1] for v, _ in newcomers])  # core training completed
    matched = stack.wait_for_proposal(waiting)
    assert {v["volunteer_id"] for v in matched["volunteers"]} == {rejected, "fay", "gus", "hal"}
    stack.wait_for_status(waiting, "proposed")

    proposed = [e for e in stack.matching_events() if isinstance(e[1], MatchProposed)]
    assert all(
        envelope.correlationid == f"corr-MATCH-{1 if e.referral_id == first else 2}"
        for envelope, e in proposed
    )


def test_cli_refuses_bad_input_with_one_line(stack: Stack) -> None:
    for args, expected in [
        (["volunteer", "vetted", "nobody", "--dbs-date", "2026-01-01"], "no volunteer nobody"),
        (
            [
                "volunteer",
                "add",
                "Bad Id",
                "--name",
                "x",
                "--gender",
                "male",
                "--local-authority",
                "hull",
                "--postcode-district",
                "HU1",
            ],
            "volunteer_id",
        ),
        (
            [
                "volunteer",
                "add",
                "ok-id",
                "--name",
                "x",
                "--gender",
                "male",
                "--local-authority",
                "hull",
                "--postcode-district",
                "not a district",
            ],
            "postcode_district",
        ),
        (["volunteer", "supervised", "ann", "--date", "2999-01-01"], "in the future"),
        (["proposal", "accept", str(uuid.uuid4())], "no proposal"),
        (["volunteer", "conflict", "ann", "--reason", "x"], "exactly one of"),
    ]:
        result = run_cli(stack.env, *args, check=False)
        assert result.returncode == 1, (args, result.stdout)
        assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr


def test_the_coordinator_api_does_what_the_cli_does(stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        assert client.get("/v1/volunteers").status_code == 401
        assert client.get("/v1/volunteers", headers={"Authorization": "Bearer wrong"}).status_code == 401
        for i, gender in enumerate(["female", "male", "female", "male"]):
            volunteer_id = f"api-{i}"
            created = client.post(
                "/v1/volunteers",
                headers=auth,
                json={
                    "volunteer_id": volunteer_id,
                    "name": f"Synthetic {volunteer_id}",
                    "gender": gender,
                    "local_authority": "north-east-lincolnshire",
                    "postcode_district": "DN31",
                },
            )
            assert created.status_code == 201, created.text
            assert (
                created.json()["matchable"] is False
                and "dbs_missing" in created.json()["not_matchable_because"]
            )
            for path, day in (
                ("vetting", "2026-01-05"),
                ("training", "2026-02-01"),
                ("supervision", "2026-11-10"),
            ):
                answer = client.post(
                    f"/v1/volunteers/{volunteer_id}/{path}", headers=auth, json={"date": day}
                )
                assert answer.status_code == 200, answer.text
            assert answer.json()["matchable"] is True
        duplicate = client.post(
            "/v1/volunteers",
            headers=auth,
            json={
                "volunteer_id": "api-0",
                "name": "x",
                "gender": "male",
                "local_authority": "hull",
                "postcode_district": "HU1",
            },
        )
        assert (
            duplicate.status_code == 409 and duplicate.headers["content-type"] == "application/problem+json"
        )
        assert (
            client.post(
                "/v1/volunteers/nobody/vetting", headers=auth, json={"date": "2026-01-01"}
            ).status_code
            == 404
        )
        future = client.post("/v1/volunteers/api-0/supervision", headers=auth, json={"date": "2999-01-01"})
        assert future.status_code == 422 and "future" in future.json()["detail"]
        invalid = client.post("/v1/volunteers", headers=auth, json={"volunteer_id": "Bad Id", "gender": "x"})
        assert invalid.status_code == 422 and len(invalid.json()["errors"]) >= 4

        referral = stack.submit(
            "MATCH-API-1",
            core_member__local_authority="north-east-lincolnshire",
            core_member__postcode_district="DN32",
            exclusion_zones=[],
        )
        proposal = stack.wait_for_proposal(referral)
        assert {v["volunteer_id"] for v in proposal["volunteers"]} == {"api-0", "api-1", "api-2", "api-3"}
        listed = client.get("/v1/proposals", params={"status": "open"}, headers=auth).json()
        assert proposal["proposal_id"] in [p["proposal_id"] for p in listed]
        path = f"/v1/proposals/{proposal['proposal_id']}/decision"
        named = {**auth, "X-Circles-Account": "Not An Id"}
        assert client.post(path, headers=named, json={"outcome": "accept"}).status_code == 422
        acting = {**auth, "X-Circles-Account": "coordinator-ann"}  # the page names its signed-in account
        decided = client.post(path, headers=acting, json={"outcome": "accept"})
        assert decided.status_code == 200 and decided.json()["outcome"] == "accept"
        shown = client.get(f"/v1/proposals/{proposal['proposal_id']}", headers=auth).json()
        assert shown["decided_by"] == "coordinator-ann"
        again = client.post(
            f"/v1/proposals/{proposal['proposal_id']}/decision", headers=auth, json={"outcome": "reject"}
        )
        assert again.status_code == 409
        stack.wait_for_status(referral, "circle_formed")
        circles = {v["volunteer_id"]: v["circles"] for v in client.get("/v1/volunteers", headers=auth).json()}
        assert all(len(circles[f"api-{i}"]) == 1 for i in range(4))


def test_reminders_when_a_dbs_check_is_about_to_lapse_and_supervision_is_overdue(stack: Stack) -> None:
    stack.clock.write_text("2028-12-15T09:00:00+00:00")  # DBS checks of 2026-01-10 lapse on 2029-01-10
    try:
        deadline = time.monotonic() + 30
        while True:
            reminders = [e for _, e in stack.matching_events() if isinstance(e, VolunteerReminderDue)]
            kinds = {(r.volunteer_id, r.kind.value, r.days_left) for r in reminders}
            if ("ann", "dbs_expiring", 30) in kinds and any(k[1] == "supervision_overdue" for k in kinds):
                break
            assert time.monotonic() < deadline, kinds
            time.sleep(0.5)
        # The marker that the reminder timer has run again since: a later day crosses ann's 7-day threshold.
        stack.clock.write_text("2029-01-05T09:00:00+00:00")
        deadline = time.monotonic() + 30
        while ("ann", "dbs_expiring", 7) not in kinds:
            assert time.monotonic() < deadline, kinds
            time.sleep(0.5)
            again = [e for _, e in stack.matching_events() if isinstance(e, VolunteerReminderDue)]
            kinds = {(r.volunteer_id, r.kind.value, r.days_left) for r in again}
        assert len(again) == len({(r.volunteer_id, r.kind, r.due_on, r.days_left) for r in again})
    finally:
        stack.clock.write_text("2026-11-24T10:00:00+00:00")
