"""The coordinator page's circles: active and ended, escalated concerns first, each circle's meetings with
their minutes status, reviews due, concerns; a meeting, a review and an ending recorded from the page as
commands (CSRF, every field error); volunteers' accounts made from the volunteers page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.events.circles import (
    CircleEnded,
    CircleOutcome,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    EndCircle,
    EndReason,
    RecordMeeting,
    RecordReview,
)
from schemas.events.coordinator import PasswordHash
from services.coordinator.accounts import AccountExists
from services.coordinator.circle_commands import CircleCommands
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.passwords import verify_password
from services.runtime.clock import FixedClock
from tests.unit.coordinator.test_circles_view import activated, base, fold, meeting
from tests.unit.coordinator.test_volunteers_web import Sink
from tests.unit.coordinator.test_web import NOW, coordinator_web, signed_in

CALM, ESCALATED, ENDED = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
CONCERN = uuid.uuid4()


class Circles:
    def __init__(self) -> None:
        raised: dict[str, Any] = {"level": ConcernLevel.URGENT, "raised_at": NOW - timedelta(hours=5)}
        self.views = {
            str(CALM): fold([activated(CALM), meeting(CALM, uuid.uuid4(), date(2026, 11, 3))]),
            str(ESCALATED): fold(
                [
                    activated(ESCALATED),
                    ConcernRaised(**base(ESCALATED), concern_id=CONCERN, **raised),
                    ConcernEscalated(**base(ESCALATED), concern_id=CONCERN, escalated_at=NOW, **raised),
                ]
            ),
            str(ENDED): fold(
                [
                    activated(ENDED),
                    CircleEnded(
                        **base(ENDED),
                        outcome=CircleOutcome.COMPLETED,
                        reason=None,
                        ended_on=date(2026, 11, 20),
                        volunteer_ids=["vol-a"],
                        ended_at=NOW,
                    ),
                ]
            ),
        }

    def circles(self) -> list[CircleView]:
        return list(self.views.values())

    def circle(self, circle_id: str) -> CircleView | None:
        return self.views.get(circle_id.removeprefix("circle-"))


class VolunteerAccounts:
    def __init__(self) -> None:
        self.made: dict[str, PasswordHash] = {}

    def ids(self) -> set[str]:
        return set(self.made)

    async def add(self, volunteer_id: str, password: PasswordHash, created_by: str) -> Any:
        if volunteer_id in self.made:
            raise AccountExists(f"volunteer {volunteer_id} already has an account")
        self.made[volunteer_id] = password


@pytest.fixture
def web() -> tuple[TestClient, Sink, VolunteerAccounts]:
    sink, accounts = Sink(), VolunteerAccounts()
    app = coordinator_web(
        circles=Circles(),
        commands=CircleCommands(sink, FixedClock(NOW)),
        volunteer_accounts=accounts,
    )
    return TestClient(app, raise_server_exceptions=False), sink, accounts


def test_active_circles_escalated_first_and_ended_ones_apart(web) -> None:
    client, _, _ = web
    signed_in(client)
    active = client.get("/circles").text
    rows = re.findall(r'data-circle="circle-([0-9a-f-]+)"', active)
    assert rows == [str(ESCALATED), str(CALM)]
    assert "1 escalated" in active and "Active (2)" in active and "Ended (1)" in active
    ended = client.get("/circles?status=ended").text
    assert re.findall(r'data-circle="circle-([0-9a-f-]+)"', ended) == [str(ENDED)]
    assert "Completed" in ended


def test_a_circle_shows_meetings_minutes_concerns_and_forms_only_while_active(web) -> None:
    client, _, _ = web
    signed_in(client)
    calm = client.get(f"/circles/circle-{CALM}").text
    assert 'data-minutes="overdue"' in calm and "Record a meeting" in calm and "End the circle" in calm
    escalated = client.get(f"/circles/circle-{ESCALATED}").text
    assert f'data-concern="{CONCERN}"' in escalated and "Escalated" in escalated
    ended = client.get(f"/circles/circle-{ENDED}").text
    assert "Record a meeting" not in ended
    assert client.get("/circles/circle-unknown").status_code == 404


def test_meeting_review_and_ending_are_sent_as_commands(web) -> None:
    client, sink, _ = web
    csrf = signed_in(client)
    path = f"/circles/circle-{CALM}"
    assert client.post(f"{path}/review", data={"held_on": "2026-11-24"}).status_code == 403
    sent = [
        client.post(
            f"{path}/meeting",
            data={
                "held_on": "2026-11-23",
                "attendance": "attended",
                "volunteers": ["vol-a"],
                "csrf_token": csrf,
            },
            follow_redirects=False,
        ),
        client.post(
            f"{path}/review", data={"held_on": "2026-11-24", "csrf_token": csrf}, follow_redirects=False
        ),
        client.post(
            f"{path}/end",
            data={
                "outcome": "ended_early",
                "reason": "moved_away",
                "ended_on": "2026-11-24",
                "csrf_token": csrf,
            },
            follow_redirects=False,
        ),
    ]
    assert [r.status_code for r in sent] == [303, 303, 303]
    meeting_sent, review, end = sink.sent
    assert isinstance(meeting_sent, RecordMeeting) and meeting_sent.minutes is None
    assert meeting_sent.requested_by == "coordinator:coordinator" and meeting_sent.referral_id == CALM
    assert isinstance(review, RecordReview) and review.held_on == date(2026, 11, 24)
    assert isinstance(end, EndCircle) and end.reason is EndReason.MOVED_AWAY
    assert end.requested_at == NOW.astimezone(UTC)


def test_an_early_ending_without_a_reason_is_refused_with_the_error(web) -> None:
    client, sink, _ = web
    csrf = signed_in(client)
    refused = client.post(
        f"/circles/circle-{CALM}/end",
        data={"outcome": "ended_early", "ended_on": "2026-11-24", "csrf_token": csrf},
    )
    assert refused.status_code == 422 and "needs a reason" in refused.text and sink.sent == []
    nonsense = client.post(
        f"/circles/circle-{CALM}/review", data={"held_on": "yesterday", "csrf_token": csrf}
    )
    assert nonsense.status_code == 422 and "held on" in nonsense.text


def test_a_volunteer_account_is_made_once_with_a_one_time_password(web) -> None:
    client, _, accounts = web
    csrf = signed_in(client)
    assert "Create account" in client.get("/volunteers").text
    made = client.post("/volunteers/v0/account", data={"csrf_token": csrf})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    password = re.search(r"<code data-password>([^<]+)</code>", made.text).group(1)  # type: ignore[union-attr]
    assert verify_password(password, accounts.made["v0"])
    assert client.post("/volunteers/v0/account", data={"csrf_token": csrf}).status_code == 409
    assert client.post("/volunteers/nobody/account", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/volunteers/lapsed/account", data={"csrf_token": "forged"}).status_code == 403
