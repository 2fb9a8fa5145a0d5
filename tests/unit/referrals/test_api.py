"""The partner API's contract, with fakes for Kafka: status codes, problem bodies, ownership, idempotency."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from schemas.common import ReferralStatus
from schemas.envelope import Event
from schemas.events.referrals import SubmitReferral, WithdrawReferral
from schemas.partner_api import ReferralSubmission
from services.referrals.access import Access
from services.referrals.api import create_api
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import submit
from services.referrals.readmodel import ReferralIndex, refusal_of
from services.runtime.clock import FixedClock
from tests.samples import agency_record, submission_body
from tests.strategies import broken_bodies

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
KEYS = {"key-mappa": agency_record("mappa"), "key-police": agency_record("police-mosovo")}


class Keys:
    def authenticate(self, api_key: str) -> Any:
        return KEYS.get(api_key)


class Recorder:
    """The command publisher and the access log."""

    def __init__(self) -> None:
        self.commands: list[tuple[Event, str]] = []
        self.command_ids: list[str] = []
        self.accesses: list[tuple[str, Access, str, datetime, int | None]] = []
        self.fail = False
        self.access_fails = False
        self.broker_away = False

    async def publish_command(self, command: Event, correlation_id: str) -> str:
        if self.fail:
            raise RuntimeError("broker unavailable: Testy Fictionalperson")
        if self.broker_away:
            raise KafkaTimeoutError()
        self.commands.append((command, correlation_id))
        command_id = str(uuid.uuid4())
        self.command_ids.append(command_id)
        return command_id

    async def record(
        self,
        actor: str,
        access: Access,
        correlation_id: str,
        accessed_at: datetime,
        status: int | None = None,
    ) -> None:
        if self.access_fails:
            raise TimeoutError
        self.accesses.append((actor, access, correlation_id, accessed_at, status))


@pytest.fixture
def world() -> tuple[TestClient, ReferralIndex, Recorder]:
    index, recorder = ReferralIndex(), Recorder()
    app = create_api(
        authenticator=Keys(),
        index=index,
        publisher=recorder,
        access_log=recorder,
        base_url="http://partners.test",
        clock=FixedClock(NOW),
    )
    return TestClient(app, raise_server_exceptions=False), index, recorder


def auth(key: str = "key-mappa") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def worker_applies(index: ReferralIndex, recorder: Recorder) -> None:
    """Play the worker: apply the last published command and put the record where the API reads it."""
    command = recorder.commands[-1][0]
    assert isinstance(command, SubmitReferral)
    existing = index._records.get(command.referral_id)
    from services.referrals.domain.referral import ReferralEntry

    change = submit(
        ReferralEntry(record=existing) if existing else None, command, uuid.uuid4(), load_policy(), NOW, "u"
    )
    assert change.entry and change.entry.record
    index.apply(change.entry.record)


def test_submit_is_acknowledged_with_an_id_and_links(world) -> None:
    client, _, recorder = world
    response = client.post(
        "/v1/referrals", json=submission_body(), headers={**auth(), "X-Correlation-Id": "corr-7"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received"
    assert body["links"]["self"] == f"http://partners.test/v1/referrals/{body['referral_id']}"
    assert response.headers["x-correlation-id"] == "corr-7"
    command, correlation = recorder.commands[0]
    assert isinstance(command, SubmitReferral) and command.agency_id == "mappa" and correlation == "corr-7"
    assert client.get(f"/v1/referrals/{body['referral_id']}", headers=auth()).json()["status"] == "received"


def test_identical_resubmission_is_200_and_different_body_is_409(world) -> None:
    client, index, recorder = world
    first = client.post("/v1/referrals", json=submission_body(), headers=auth())
    again = client.post("/v1/referrals", json=submission_body(), headers=auth())
    assert again.status_code == 200 and again.json()["referral_id"] == first.json()["referral_id"]
    assert len(recorder.commands) == 1
    worker_applies(index, recorder)
    assert client.post("/v1/referrals", json=submission_body(), headers=auth()).status_code == 200
    conflict = client.post("/v1/referrals", json=submission_body(risk__level="medium"), headers=auth())
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["links"]["amend"].endswith(first.json()["referral_id"])
    assert len(recorder.commands) == 1


def test_unauthenticated_requests_get_401_before_anything_else(world) -> None:
    client, _, _ = world
    for headers in ({}, auth("wrong"), {"Authorization": "Basic key-mappa"}):
        response = client.post("/v1/referrals", content=b"not json at all", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["title"] == "Unauthorized"
    assert client.get("/v1/referrals", headers=auth("nope")).status_code == 401


def test_415_413_and_malformed_json(world) -> None:
    client, _, _ = world
    assert (
        client.post(
            "/v1/referrals", content=b"<xml/>", headers={**auth(), "Content-Type": "text/xml"}
        ).status_code
        == 415
    )
    big = json.dumps({**submission_body(), "notes": "x" * (300 * 1024)}).encode()
    too_large = client.post(
        "/v1/referrals", content=big, headers={**auth(), "Content-Type": "application/json"}
    )
    assert too_large.status_code == 413 and too_large.json()["status"] == 413
    broken = client.post(
        "/v1/referrals",
        content=b'{"agency_reference": ',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and broken.json()["errors"][0]["type"] == "json_invalid"
    for unreadable in (
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
    ):  # not UTF-8; nested past the recursion limit
        answer = client.post(
            "/v1/referrals", content=unreadable, headers={**auth(), "Content-Type": "application/json"}
        )
        assert answer.status_code == 422 and answer.json()["errors"][0]["type"] == "json_invalid"


def test_every_field_error_at_once_without_echoing_values(world) -> None:
    client, _, recorder = world
    body = submission_body(
        core_member__pnc_number="PNC-LEAK-1", risk__level="extreme", consent__given="maybe"
    )
    body["favourite_colour"] = "blue"
    response = client.post("/v1/referrals", json=body, headers=auth())
    assert response.status_code == 422
    problem = response.json()
    locations = {tuple(error["loc"]) for error in problem["errors"]}
    assert {
        ("body", "core_member", "pnc_number"),
        ("body", "risk", "level"),
        ("body", "consent", "given"),
        ("body", "favourite_colour"),
    } <= locations
    assert "PNC-LEAK-1" not in response.text and "input" not in problem["errors"][0]
    assert recorder.commands == []


def test_another_agencys_referral_is_404_like_an_unknown_one(world) -> None:
    client, index, recorder = world
    referral_id = client.post("/v1/referrals", json=submission_body(), headers=auth()).json()["referral_id"]
    worker_applies(index, recorder)
    for path in (f"/v1/referrals/{referral_id}", f"/v1/referrals/{referral_id}/history"):
        assert client.get(path, headers=auth()).status_code == 200
        theirs = client.get(path, headers=auth("key-police"))
        unknown = client.get(path.replace(referral_id, str(uuid.uuid4())), headers=auth("key-police"))
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["detail"] == unknown.json()["detail"]
    assert (
        client.put(
            f"/v1/referrals/{referral_id}", json=submission_body(), headers=auth("key-police")
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/v1/referrals/{referral_id}/withdrawal", json={"reason": "x"}, headers=auth("key-police")
        ).status_code
        == 404
    )
    assert client.get("/v1/referrals", headers=auth("key-police")).json() == {"referrals": []}


def test_status_history_and_list(world) -> None:
    client, index, recorder = world
    referral_id = client.post("/v1/referrals", json=submission_body(), headers=auth()).json()["referral_id"]
    worker_applies(index, recorder)
    view = client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert (
        view["status"] == "eligible"
        and view["version"] == 1
        and view["agency_reference"] == "MAPPA-2026-0142"
    )
    assert (
        view["decision"]["outcome"] == "eligible"
        and view["decision"]["policy_version"] == load_policy().version
    )
    history = client.get(f"/v1/referrals/{referral_id}/history", headers=auth()).json()["events"]
    assert [e["type"] for e in history] == ["circles.referral.submitted.v1", "circles.referral.assessed.v1"]
    listed = client.get("/v1/referrals", params={"status": "eligible"}, headers=auth()).json()["referrals"]
    assert [r["referral_id"] for r in listed] == [referral_id]
    assert (
        client.get("/v1/referrals", params={"status": "withdrawn"}, headers=auth()).json()["referrals"] == []
    )
    assert client.get("/v1/referrals", params={"status": "lost"}, headers=auth()).status_code == 422


def test_amend_and_withdraw(world) -> None:
    client, index, recorder = world
    referral_id = client.post(
        "/v1/referrals", json=submission_body(custody__expected_release_date=None), headers=auth()
    ).json()["referral_id"]
    worker_applies(index, recorder)
    assert client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()["status"] == "needs_information"
    other_reference = client.put(
        f"/v1/referrals/{referral_id}", json=submission_body(agency_reference="OTHER-1"), headers=auth()
    )
    assert other_reference.status_code == 422 and other_reference.json()["errors"][0]["loc"] == [
        "body",
        "agency_reference",
    ]
    amended = client.put(f"/v1/referrals/{referral_id}", json=submission_body(), headers=auth())
    assert amended.status_code == 200 and amended.json()["status"] == "received"
    command = recorder.commands[-1][0]
    assert isinstance(command, SubmitReferral) and command.amend
    worker_applies(index, recorder)
    view = client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert view["version"] == 2 and view["status"] == "eligible"
    withdrawn = client.post(
        f"/v1/referrals/{referral_id}/withdrawal", json={"reason": "moved away"}, headers=auth()
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert isinstance(recorder.commands[-1][0], WithdrawReferral)
    assert (
        client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()["status"]
        == ReferralStatus.WITHDRAWN
    )
    assert (
        client.put(
            f"/v1/referrals/{referral_id}", json=submission_body(risk__level="medium"), headers=auth()
        ).status_code
        == 409
    )
    assert client.post(f"/v1/referrals/{referral_id}/withdrawal", json={}, headers=auth()).status_code == 422


def test_an_amendment_the_worker_refuses_is_not_left_pending(world) -> None:
    """Issue 15: the worker refuses an amendment (the referral was withdrawn or erased meanwhile through
    another channel); its dead letter carries the command's id, and the API stops showing the version."""
    client, index, recorder = world
    referral_id = client.post(
        "/v1/referrals", json=submission_body(custody__expected_release_date=None), headers=auth()
    ).json()["referral_id"]
    worker_applies(index, recorder)
    path = f"/v1/referrals/{referral_id}"
    assert client.put(path, json=submission_body(), headers=auth()).json()["status"] == "received"
    assert client.get(path, headers=auth()).json()["version"] == 2 and index.pending() == 1
    headers = [("ce_id", recorder.command_ids[0].encode())]  # an older command's dead letter: not this one
    assert not refusal_of(index, referral_id.encode(), headers) and index.pending() == 1
    headers = [("ce_type", b"x"), ("ce_id", recorder.command_ids[-1].encode()), ("dlq_error", b"refused")]
    assert refusal_of(index, referral_id.encode(), headers) and index.pending() == 0
    view = client.get(path, headers=auth()).json()
    assert view["version"] == 1 and view["status"] == "needs_information"
    again = client.put(path, json=submission_body(), headers=auth())  # not "the same body": sent again
    assert again.json()["status"] == "received" and len(recorder.commands) == 3


def test_the_lock_map_holds_only_referrals_in_use(world) -> None:
    client, index, recorder = world
    for n in range(20):
        body = submission_body(agency_reference=f"MAPPA-LOCK-{n}")
        assert client.post("/v1/referrals", json=body, headers=auth()).status_code == 202
        worker_applies(index, recorder)
        referral_id = recorder.commands[-1][0].referral_id
        client.put(f"/v1/referrals/{referral_id}", json={**body, "notes": "more"}, headers=auth())
        client.post(f"/v1/referrals/{referral_id}/withdrawal", json={"reason": "x"}, headers=auth())
    assert len(recorder.commands) == 60
    assert len(client.app.state.locks) == 0


def test_an_unexpected_failure_is_a_500_problem_without_details(world) -> None:
    client, _, recorder = world
    recorder.fail = True
    response = client.post("/v1/referrals", json=submission_body(), headers=auth())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert (
        "Testy" not in response.text
        and "Traceback" not in response.text
        and "RuntimeError" not in response.text
    )


def test_a_broker_outage_is_a_503_to_send_again_and_nothing_is_recorded(world) -> None:
    """Found by the broker-restart fault test: every submission was a 500 after 30 s, with a stack trace
    in the log. The submission can be sent again as it is (an identical POST is the same referral)."""
    client, index, recorder = world
    recorder.broker_away = True
    response = client.post("/v1/referrals", json=submission_body(), headers=auth())
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    assert "Testy" not in response.text and "Traceback" not in response.text
    assert len(index) == 0
    recorder.broker_away = False
    assert client.post("/v1/referrals", json=submission_body(), headers=auth()).status_code == 202


def test_unknown_routes_and_methods_are_problems(world) -> None:
    client, _, _ = world
    assert client.get("/v1/nothing", headers=auth()).json()["status"] == 404
    assert client.delete("/v1/referrals", headers=auth()).status_code == 405
    assert client.get("/health").json() == {"status": "alive"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=broken_bodies())
def test_any_invalid_body_gets_a_422_listing_every_bad_field(world, case) -> None:
    client, _, recorder = world
    body, broken = case
    response = client.post("/v1/referrals", json=body, headers=auth())
    assert response.status_code == 422, response.text
    reported = {tuple(error["loc"][1:]) for error in response.json()["errors"]}
    for location in broken:
        assert any(found[: len(location)] == location for found in reported), (location, reported)
    assert recorder.commands == []


def test_openapi_document_describes_the_contract() -> None:
    from services.referrals.api import openapi_document

    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert set(paths) >= {
        "/v1/referrals",
        "/v1/referrals/{referral_id}",
        "/v1/referrals/{referral_id}/history",
        "/v1/referrals/{referral_id}/withdrawal",
    }
    post = paths["/v1/referrals"]["post"]
    assert {"200", "202", "401", "409", "413", "415", "422"} <= set(post["responses"])
    assert document["components"]["securitySchemes"]
    ReferralSubmission.model_validate(submission_body())


def test_every_request_about_referrals_is_recorded_before_it_is_answered(world) -> None:
    client, index, recorder = world
    headers = {**auth(), "X-Correlation-Id": "corr-audit"}
    referral_id = client.post("/v1/referrals", json=submission_body(), headers=headers).json()["referral_id"]
    worker_applies(index, recorder)
    rid = uuid.UUID(referral_id)
    assert client.get(f"/v1/referrals/{rid}", headers=headers).status_code == 200
    assert client.get(f"/v1/referrals/{rid}/history", headers=headers).status_code == 200
    assert client.get("/v1/referrals", headers=headers).status_code == 200
    assert client.get(f"/v1/referrals/{rid}", headers=auth("key-police")).status_code == 404
    assert client.get(f"/v1/referrals/{rid}/nothing", headers=headers).status_code == 404  # no referral route
    assert client.post("/v1/referrals", json={}, headers=headers).status_code == 422  # touches no referral
    assert [
        (a, access.action, list(access.referral_ids), c, t, s) for a, access, c, t, s in recorder.accesses
    ] == [
        ("agency:mappa", "submit", [rid], "corr-audit", NOW, 202),
        ("agency:mappa", "get", [rid], "corr-audit", NOW, 200),
        ("agency:mappa", "history", [rid], "corr-audit", NOW, 200),
        ("agency:mappa", "list", [rid], "corr-audit", NOW, 200),
        ("agency:police-mosovo", "get", [rid], recorder.accesses[-1][2], NOW, 404),
    ]


def test_an_access_that_cannot_be_recorded_is_not_answered(world) -> None:
    client, index, recorder = world
    referral_id = client.post("/v1/referrals", json=submission_body(), headers=auth()).json()["referral_id"]
    worker_applies(index, recorder)
    recorder.access_fails = True
    response = client.get(f"/v1/referrals/{referral_id}", headers=auth())
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5" and "agency_reference" not in response.text
    assert client.get("/v1/referrals", headers=auth()).status_code == 503
    recorder.access_fails = False
    assert client.get(f"/v1/referrals/{referral_id}", headers=auth()).status_code == 200
