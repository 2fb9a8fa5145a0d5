"""The coordinator page with fakes for the matching API and the projection: sign-in, sessions and CSRF,
proposals and decisions, volunteers' due dates, the queue, the target and the report."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from schemas.common import LocalAuthority, Outcome, Reason, ReferralStatus, RiskLevel
from schemas.coordinator_api import DecisionRequest, ProposalView, VolunteerView
from schemas.events.coordinator import CoordinatorAccount
from schemas.events.matching import ChosenVolunteer, PassedOver
from services.coordinator.domain.facts import DeadLetterFact
from services.coordinator.domain.passwords import hash_password, verify_password
from services.coordinator.matching_client import MatchingRefused
from services.coordinator.sessions import COOKIE, SessionSigner
from services.coordinator.web import create_web
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.service_levels import ServiceLevels
from services.runtime.clock import FixedClock

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)  # a Tuesday
PASSWORD = "synthetic-password-1"
ACCOUNT = CoordinatorAccount(
    account_id="coordinator",
    display_name="Synthetic Coordinator",
    password=hash_password(PASSWORD),
    created_at=NOW,
    updated_at=NOW,
)


class Accounts:
    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        return (
            ACCOUNT if account_id == "coordinator" and verify_password(password, ACCOUNT.password) else None
        )

    def get(self, account_id: str) -> CoordinatorAccount | None:
        return ACCOUNT if account_id == "coordinator" else None


def proposal(status: str = "open", attempt: int = 1, referral: uuid.UUID | None = None) -> ProposalView:
    return ProposalView(
        proposal_id=uuid.uuid4(),
        referral_id=referral or uuid.uuid4(),
        agency_id="mappa-humberside",
        agency_reference="MAPPA-SYN-1",
        attempt=attempt,
        status=status,
        volunteers=[
            ChosenVolunteer(volunteer_id=f"v{i}", reasons=[Reason(code="vetted", message=f"Vetted v{i}.")])
            for i in range(4)
        ],
        passed_over=[
            PassedOver(
                volunteer_id="v9", reasons=[Reason(code="held_by_open_proposal", message="Held elsewhere.")]
            )
        ],
        flags=[],
        score=12.5,
        risk_level=RiskLevel.HIGH,
        local_authority=LocalAuthority.HULL,
        priority=1 if status == "open" else None,
        proposed_at=NOW,
        decided_at=None,
        decided_by=None,
        note=None,
        rejected_volunteer_ids=[],
    )


def volunteer(volunteer_id: str, **changes: Any) -> VolunteerView:
    values: dict[str, Any] = dict(
        volunteer_id=volunteer_id,
        name=f"Synthetic {volunteer_id}",
        gender="female",
        local_authority="hull",
        postcode_district="HU7",
        experienced=False,
        skills=[],
        availability=[],
        max_circles=2,
        matchable=True,
        not_matchable_because=[],
        open_proposals=[],
        circles=[],
        dbs_checked_on=date(2025, 1, 1),
        dbs_expires_on=date(2028, 1, 1),
        trained_on=date(2025, 2, 1),
        last_supervised_on=date(2026, 11, 1),
        supervision_due_on=date(2026, 12, 27),
        withdrawn=False,
    )
    values.update(changes)
    return VolunteerView.model_validate(values)


class Matching:
    def __init__(self) -> None:
        self.items = [proposal(), proposal("accepted")]
        self.decisions: list[tuple[uuid.UUID, DecisionRequest]] = []
        self.deciders: list[str] = []
        self.refuse: MatchingRefused | None = None

    async def proposals(self, status: str | None = None) -> list[ProposalView]:
        return [p for p in self.items if status is None or p.status == status]

    async def proposal(self, proposal_id: uuid.UUID) -> ProposalView | None:
        return next((p for p in self.items if p.proposal_id == proposal_id), None)

    async def volunteers(self) -> list[VolunteerView]:
        return [
            volunteer("v0"),
            volunteer(
                "lapsed",
                dbs_expires_on=date(2026, 11, 1),
                matchable=False,
                not_matchable_because=["dbs_expired"],
            ),
            volunteer("soon", dbs_expires_on=date(2026, 12, 24)),
            volunteer(
                "late",
                supervision_due_on=date(2026, 11, 20),
                matchable=False,
                not_matchable_because=["supervision_overdue"],
            ),
        ]

    async def decide(self, proposal_id: uuid.UUID, request: DecisionRequest, by: str) -> Any:
        if self.refuse:
            raise self.refuse
        self.decisions.append((proposal_id, request))
        self.deciders.append(by)
        return None


class Facts:
    def __init__(self) -> None:
        self.items = [
            ReferralProgress(
                referral_id=uuid.uuid4(),
                agency_id="mappa-humberside",
                agency_reference="OLD-1",
                status=ReferralStatus.RECEIVED,
                submitted_at=NOW - timedelta(days=20),
                clock_from=NOW - timedelta(days=20),
            ),
            ReferralProgress(
                referral_id=uuid.uuid4(),
                agency_id="hmp-hull",
                agency_reference="NEW-1",
                status=ReferralStatus.ELIGIBLE,
                submitted_at=NOW - timedelta(hours=2),
                acknowledged_at=NOW - timedelta(hours=1),
                clock_from=NOW - timedelta(hours=2),
                outcome=Outcome.ELIGIBLE,
                risk_level=RiskLevel.HIGH,
            ),
            ReferralProgress(
                referral_id=uuid.uuid4(),
                agency_id="hmp-hull",
                agency_reference="FORMED-1",
                status=ReferralStatus.CIRCLE_FORMED,
                submitted_at=NOW - timedelta(days=30),
                acknowledged_at=NOW - timedelta(days=30),
                circle_formed_at=NOW - timedelta(days=3),
                outcome=Outcome.ELIGIBLE,
            ),
        ]

    def referrals(self) -> list[ReferralProgress]:
        return self.items

    def dead_letters(self) -> list[DeadLetterFact]:
        return [
            DeadLetterFact(
                notification_id=uuid.uuid4(),
                referral_id=None,
                channel="webhook",
                recipient_id="hmp-hull",
                reason="http_500",
                at=NOW - timedelta(days=1),
            )
        ]


def coordinator_web(**changes: Any) -> FastAPI:
    """The coordinator page over this module's fakes at ``NOW``; ``changes``: other or more arguments."""
    arguments: dict[str, Any] = {
        "accounts": Accounts(),
        "matching": Matching(),
        "facts": Facts(),
        "signer": SessionSigner("test-secret", 1),
        "clock": FixedClock(NOW),
        "levels": ServiceLevels(),
        "yearly_target": 8,
        "target_year_starts_month": 4,
    }
    return create_web(**(arguments | changes))


@pytest.fixture
def web() -> tuple[TestClient, Matching]:
    matching = Matching()
    app = coordinator_web(
        matching=matching,
    )
    return TestClient(app, raise_server_exceptions=False), matching


def signed_in(client: TestClient) -> str:
    response = client.post(
        "/sign-in",
        data={"account": "coordinator", "password": PASSWORD, "next": "/volunteers"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/volunteers"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/proposals").text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_pages_need_a_signed_in_coordinator(web) -> None:
    client, _ = web
    for path in ("/proposals", "/volunteers", "/referrals", "/target", "/report", "/operations"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/sign-in?next=")
    assert client.get("/live").status_code == 401
    assert client.get("/report.csv").status_code == 401


def test_sign_in_refuses_a_wrong_password_and_never_redirects_off_site(web) -> None:
    client, _ = web
    refused = client.post("/sign-in", data={"account": "coordinator", "password": "wrong-password-x"})
    assert refused.status_code == 401 and "not right" in refused.text and 'role="alert"' in refused.text
    away = client.post(
        "/sign-in",
        data={"account": "coordinator", "password": PASSWORD, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/proposals"


def test_a_tampered_cookie_is_not_a_session(web) -> None:
    client, _ = web
    signed_in(client)
    cookie = client.cookies.get(COOKIE)
    assert cookie
    payload, signature = cookie.rsplit(".", 1)
    client.cookies.clear()
    client.cookies.set(COOKIE, payload + "." + signature[::-1])
    assert client.get("/proposals", follow_redirects=False).status_code == 303


def test_inbox_and_decision_with_csrf(web) -> None:
    client, matching = web
    csrf = signed_in(client)
    open_one = matching.items[0]
    inbox = client.get("/proposals").text
    assert f"/proposals/{open_one.proposal_id}" in inbox and "MAPPA-SYN-1" in inbox
    detail = client.get(f"/proposals/{open_one.proposal_id}").text
    assert "Synthetic v0" in detail and "Vetted v0." in detail and "Held elsewhere." in detail
    forged = client.post(
        f"/proposals/{open_one.proposal_id}/decision", data={"outcome": "accept", "csrf_token": "x"}
    )
    assert forged.status_code == 403 and matching.decisions == []
    done = client.post(
        f"/proposals/{open_one.proposal_id}/decision",
        data={"outcome": "reject", "csrf_token": csrf, "set_aside": ["v1", "v2"], "note": " knows him "},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("decided=reject")
    assert matching.decisions == [
        (
            open_one.proposal_id,
            DecisionRequest(outcome="reject", rejected_volunteer_ids=["v1", "v2"], note="knows him"),
        )
    ]
    missing = client.post(
        f"/proposals/{open_one.proposal_id}/decision", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert missing.headers["location"].endswith("error=choose")
    matching.refuse = MatchingRefused(409, "proposal is already accepted")
    refused = client.post(
        f"/proposals/{open_one.proposal_id}/decision", data={"outcome": "accept", "csrf_token": csrf}
    )
    assert "already accepted" in refused.text
    assert client.get(f"/proposals/{uuid.uuid4()}").status_code == 404
    accepted = client.get(f"/proposals/{open_one.proposal_id}?decided=accept").text
    assert f'href="/circles/circle-{open_one.referral_id}"' in accepted  # on to the new circle's page


def test_volunteers_due_dates_are_marked_in_words(web) -> None:
    client, _ = web
    signed_in(client)
    page = client.get("/volunteers").text
    assert "Lapsed" in page and "Due in 30 days" in page and "Overdue" in page and "Matchable" in page


def test_queue_shows_ages_against_the_service_levels(web) -> None:
    client, _ = web
    signed_in(client)
    page = client.get("/referrals").text
    assert "OLD-1" in page and "Overdue by" in page
    assert "NEW-1" in page and "working days left" in page


def test_target_and_report(web) -> None:
    client, _ = web
    signed_in(client)
    target = client.get("/target").text
    assert "<strong data-circles-formed>1</strong> of 8" in target and "FORMED-1" in target
    report = client.get("/report", params={"start": "2026-10-01", "end": "2026-11-30"}).text
    assert "3 referrals received" in report and "<svg" in report and "Circles formed 2026/27" in report
    assert "1 circle formed in the period; 1 of the target of 8 in 2026/27" in report
    csv_file = client.get("/report.csv", params={"start": "2026-10-01", "end": "2026-11-30"})
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert "agency:hmp-hull,received,2" in csv_file.text and "messages,dead_lettered,1" in csv_file.text
    assert "circles,formed_in_period,1" in csv_file.text
    early = client.get("/report", params={"start": "2026-10-01", "end": "2026-11-15"}).text
    assert "0 circles formed in the period" in early
    svg = client.get("/report.svg", params={"start": "2026-10-01", "end": "2026-11-30"})
    assert svg.headers["content-type"] == "image/svg+xml" and "<title" in svg.text
    bad = client.get("/report", params={"start": "2026-12-01", "end": "2026-11-01"})
    assert bad.status_code == 422


def test_a_decision_names_the_signed_in_account(web) -> None:
    """Issue 14, finding 5: the page passes the account to the matching API, which records it."""
    client, matching = web
    csrf = signed_in(client)
    open_one = matching.items[0]
    client.post(f"/proposals/{open_one.proposal_id}/decision", data={"outcome": "accept", "csrf_token": csrf})
    assert matching.deciders == ["coordinator"]
