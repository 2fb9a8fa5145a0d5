"""Sessions end on the server side (issue 14, finding 4): a signed-out cookie, put back, is no session;
disabling an account or resetting its password ends its sessions; the session code is generic over the
account kind (a volunteer's cookie is no coordinator session)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from schemas.events.coordinator import CoordinatorAccount
from services.accounts.sessions import LocalSessions, SessionSigner, still_valid
from services.coordinator.accounts import disabled, enabled, password_reset
from services.coordinator.domain.passwords import hash_password, verify_password
from services.coordinator.sessions import COOKIE
from tests.unit.coordinator.test_web import ACCOUNT, PASSWORD, coordinator_web


class Accounts:
    """One account whose record the test changes, as `circles coordinator disable|enable|reset-password`."""

    def __init__(self) -> None:
        self.account = ACCOUNT

    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        account = self.get(account_id)
        ok = account is not None and not account.disabled and verify_password(password, account.password)
        return account if ok else None

    def get(self, account_id: str) -> CoordinatorAccount | None:
        return self.account if account_id == self.account.account_id else None


@pytest.fixture
def web() -> tuple[TestClient, Accounts]:
    accounts = Accounts()
    app = coordinator_web(
        accounts=accounts,
        sessions=LocalSessions(),
    )
    return TestClient(app, raise_server_exceptions=False), accounts


def sign_in(client: TestClient, password: str = PASSWORD) -> str:
    client.cookies.clear()
    response = client.post(
        "/sign-in", data={"account": "coordinator", "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    cookie = client.cookies.get(COOKIE)
    assert cookie
    return cookie


def signed_in_with(client: TestClient, cookie: str) -> bool:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    return client.get("/referrals", follow_redirects=False).status_code == 200


def test_a_signed_out_cookie_put_back_is_no_session(web) -> None:
    client, _ = web
    cookie = sign_in(client)
    other = TestClient(client.app)
    assert signed_in_with(other, cookie)  # a thief's copy works while the session lasts
    page = client.get("/proposals").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    signed_out = client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert not signed_in_with(client, cookie)
    assert not signed_in_with(other, cookie)  # the copy ends with it
    assert signed_in_with(client, sign_in(client))  # signing in again is a new session


def test_disabling_an_account_ends_its_sessions_and_enabling_does_not_revive_them(web) -> None:
    client, accounts = web
    cookie = sign_in(client)
    assert signed_in_with(client, cookie)
    accounts.account = disabled(accounts.account, datetime.now(UTC))
    assert not signed_in_with(client, cookie)
    refused = client.post("/sign-in", data={"account": "coordinator", "password": PASSWORD})
    assert refused.status_code == 401
    accounts.account = enabled(accounts.account, datetime.now(UTC) + timedelta(seconds=1))
    assert not signed_in_with(client, cookie)
    assert signed_in_with(client, sign_in(client))


def test_a_password_reset_ends_the_sessions_signed_in_with_the_old_one(web) -> None:
    client, accounts = web
    cookie = sign_in(client)
    new_password = "synthetic-password-2"
    accounts.account = password_reset(accounts.account, hash_password(new_password), datetime.now(UTC))
    assert not signed_in_with(client, cookie)
    assert client.post("/sign-in", data={"account": "coordinator", "password": PASSWORD}).status_code == 401
    assert signed_in_with(client, sign_in(client, new_password))


def test_sessions_are_of_one_account_kind_and_last_at_most_a_day() -> None:
    volunteers = SessionSigner("same-secret", 1, kind="volunteer")
    coordinators = SessionSigner("same-secret", 1, kind="coordinator")
    cookie, session = volunteers.issue("coordinator", "Synthetic")
    assert volunteers.read(cookie) == session and session.kind == "volunteer"
    assert coordinators.read(cookie) is None
    with pytest.raises(ValueError, match="at most 24 hours"):
        SessionSigner("s", 25)


async def test_still_valid_wants_an_enabled_account_and_a_session_not_ended() -> None:
    signer = SessionSigner("s", 1)
    _, session = signer.issue("coordinator", "Synthetic")
    ended = LocalSessions()
    assert still_valid(session, ACCOUNT, ended)
    assert not still_valid(session, None, ended)
    assert not still_valid(session, ACCOUNT.model_copy(update={"disabled": True}), ended)
    later = datetime.fromtimestamp(session.issued, UTC) + timedelta(seconds=1)
    assert not still_valid(session, ACCOUNT.model_copy(update={"sessions_since": later}), ended)
    await ended.end(session)
    assert not still_valid(session, ACCOUNT, ended)
