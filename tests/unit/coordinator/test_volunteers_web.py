"""The volunteers' page with fakes for the accounts, the circles view and the command sink (no Kafka here:
tests/integration/test_volunteers_page.py runs it on the broker): sign-in and throttling, sessions of the
volunteer kind only, a volunteer's own circles only (another's is 404), CSRF, the commands it sends (minutes
and summaries in the commands, never in the log), security headers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from schemas.events.circles import CircleCommand, RaiseConcern, RecordMeeting, SubmitMinutes
from schemas.events.coordinator import VolunteerAccount
from services.accounts.sessions import SessionSigner
from services.accounts.throttle import ThrottleLimits
from services.coordinator.circle_commands import CircleCommands
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.passwords import hash_password, verify_password
from services.coordinator.sessions import VOLUNTEER_COOKIE
from services.coordinator.volunteers_web import create_volunteers_web
from services.runtime.clock import FixedClock
from tests.unit.coordinator.test_circles_view import activated, fold, meeting

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
PASSWORD = "synthetic-volunteer-pass"
ACCOUNT = VolunteerAccount(
    volunteer_id="vol-a", password=hash_password(PASSWORD), created_at=NOW, updated_at=NOW
)
MINE, THEIRS = uuid.uuid4(), uuid.uuid4()
MET = uuid.uuid4()


class Accounts:
    def sign_in(self, account_id: str, password: str) -> VolunteerAccount | None:
        return ACCOUNT if account_id == "vol-a" and verify_password(password, ACCOUNT.password) else None

    def get(self, account_id: str) -> VolunteerAccount | None:
        return ACCOUNT if account_id == "vol-a" else None


class Circles:
    def __init__(self) -> None:
        self.views = {
            str(MINE): fold([activated(MINE, ["vol-a", "vol-b"]), meeting(MINE, MET, NOW.date())]),
            str(THEIRS): fold([activated(THEIRS, ["vol-c"])]),
        }

    def circles(self) -> list[CircleView]:
        return list(self.views.values())

    def circle(self, circle_id: str) -> CircleView | None:
        return self.views.get(circle_id.removeprefix("circle-"))


class Sink:
    def __init__(self) -> None:
        self.sent: list[CircleCommand] = []

    async def send(self, command: CircleCommand) -> None:
        self.sent.append(command)


def build(sink: Sink, limits: ThrottleLimits | None = None) -> FastAPI:
    return create_volunteers_web(
        accounts=Accounts(),
        circles=Circles(),
        commands=CircleCommands(sink, FixedClock(NOW)),
        signer=SessionSigner("test-secret", 1, "volunteer"),
        clock=FixedClock(NOW),
        sign_in_limits=limits,
    )


@pytest.fixture
def web() -> tuple[TestClient, Sink]:
    sink = Sink()
    return TestClient(build(sink), raise_server_exceptions=False), sink


def signed_in(client: TestClient) -> str:
    response = client.post(
        "/sign-in",
        data={"account": "vol-a", "password": PASSWORD, "next": "/circles"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/circles"
    assert (
        "HttpOnly" in response.headers["set-cookie"] and "SameSite=strict" in response.headers["set-cookie"]
    )
    page = client.get("/circles").text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_every_page_but_sign_in_needs_a_volunteer_session() -> None:
    app = build(Sink())
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in {
            "/sign-in",
            "/sign-out",
            "/",
            "/health",
            "/ready",
        }:
            assert "signed_in" in {d.call.__name__ for d in route.dependant.dependencies if d.call}, (
                route.path
            )
    client = TestClient(app)
    for path in ("/circles", f"/circles/circle-{MINE}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/sign-in?next={path}"


def test_a_coordinator_cookie_is_no_volunteer_session(web) -> None:
    client, _ = web
    cookie, _ = SessionSigner("test-secret", 1, "coordinator").issue("vol-a", "vol-a")
    client.cookies.set(VOLUNTEER_COOKIE, cookie)
    assert client.get("/circles", follow_redirects=False).status_code == 303


def test_sign_in_is_refused_then_throttled_and_never_redirects_off_site() -> None:
    client = TestClient(build(Sink(), ThrottleLimits(per_account=2, per_client=100, window_s=600)))
    assert client.post("/sign-in", data={"account": "vol-a", "password": "wrong"}).status_code == 401
    assert client.post("/sign-in", data={"account": "vol-a", "password": "wrong"}).status_code == 401
    throttled = client.post("/sign-in", data={"account": "vol-a", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    other = TestClient(build(Sink()))
    away = other.post(
        "/sign-in",
        data={"account": "vol-a", "password": PASSWORD, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/circles"


def test_a_volunteer_sees_only_their_own_circles(web) -> None:
    client, _ = web
    signed_in(client)
    listing = client.get("/circles").text
    assert f"circle-{MINE}" in listing and f"circle-{THEIRS}" not in listing
    assert "Upcoming meetings" in listing and "1 Dec 2026" in listing  # a week after the last meeting
    assert client.get(f"/circles/circle-{MINE}").status_code == 200
    assert client.get(f"/circles/circle-{THEIRS}").status_code == 404
    assert client.get("/circles/circle-nonsense").status_code == 404


def test_security_headers_on_every_answer(web) -> None:
    client, _ = web
    for response in (client.get("/sign-in"), client.get("/static/volunteers.css")):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/sign-in").headers["cache-control"] == "no-store"
    too_large = client.post(f"/circles/circle-{MINE}/meeting", data={"minutes": "x" * 300_000})
    assert too_large.status_code == 413


def test_record_a_meeting_with_minutes_and_raise_a_concern(web) -> None:
    client, sink = web
    csrf = signed_in(client)
    path = f"/circles/circle-{MINE}"
    forged = client.post(f"{path}/meeting", data={"held_on": "2026-11-24", "attendance": "attended"})
    assert forged.status_code == 403 and sink.sent == []
    with capture_logs() as logs:
        recorded = client.post(
            f"{path}/meeting",
            data={
                "held_on": "2026-11-24",
                "attendance": "late",
                "volunteers": ["vol-b", "vol-z"],
                "minutes": "Synthetic minutes sentinel",
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert recorded.status_code == 303 and recorded.headers["location"] == f"{path}?done=meeting"
        concern = client.post(
            f"{path}/concern",
            data={"level": "urgent", "summary": "Synthetic summary sentinel", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert concern.status_code == 303
        late = client.post(
            f"{path}/minutes",
            data={"meeting_id": str(MET), "minutes": "Synthetic late minutes", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert late.status_code == 303
    meeting_sent, concern_sent, minutes_sent = sink.sent
    assert isinstance(meeting_sent, RecordMeeting) and meeting_sent.referral_id == MINE
    assert meeting_sent.volunteer_ids == ["vol-a", "vol-b"]  # not the stranger; the volunteer themself
    assert (
        meeting_sent.minutes == "Synthetic minutes sentinel"
        and meeting_sent.requested_by == "volunteer:vol-a"
    )
    assert isinstance(concern_sent, RaiseConcern) and concern_sent.raised_by == "vol-a"
    assert isinstance(minutes_sent, SubmitMinutes) and minutes_sent.meeting_id == MET
    assert "sentinel" not in repr(logs)


def test_bad_input_gets_every_field_error_and_nothing_is_sent(web) -> None:
    client, sink = web
    csrf = signed_in(client)
    path = f"/circles/circle-{MINE}"
    refused = client.post(
        f"{path}/meeting", data={"held_on": "someday", "attendance": "maybe", "csrf_token": csrf}
    )
    assert refused.status_code == 422
    assert "held on" in refused.text and "core member attendance" in refused.text
    assert 'value="someday"' in refused.text  # what was typed is kept
    blank = client.post(f"{path}/concern", data={"level": "urgent", "summary": "  ", "csrf_token": csrf})
    assert blank.status_code == 422 and "summary" in blank.text
    stranger = client.post(
        f"/circles/circle-{THEIRS}/concern", data={"level": "urgent", "summary": "x", "csrf_token": csrf}
    )
    assert stranger.status_code == 404
    unknown = client.post(
        f"{path}/minutes", data={"meeting_id": str(uuid.uuid4()), "minutes": "x", "csrf_token": csrf}
    )
    assert unknown.status_code == 422
    assert sink.sent == []


def test_sign_out_ends_the_session(web) -> None:
    client, _ = web
    csrf = signed_in(client)
    cookie = client.cookies.get(VOLUNTEER_COOKIE)
    assert client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set(VOLUNTEER_COOKIE, cookie or "")
    assert client.get("/circles", follow_redirects=False).status_code == 303
