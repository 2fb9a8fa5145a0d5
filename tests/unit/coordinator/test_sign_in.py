"""Coordinator sign-in under attack (issue 14, finding 3): failed sign-ins are throttled per account and
per client with 429 and Retry-After, scrypt runs off the event loop, an unknown account costs the same
scrypt work as a known one, and refusals are logged with the account and client, never the password."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from schemas.events.coordinator import CoordinatorAccount
from services.accounts.throttle import SignInThrottle, ThrottleLimits
from services.coordinator.accounts import AccountDirectory
from tests.unit.coordinator.test_web import ACCOUNT, PASSWORD, Accounts, coordinator_web


class ThreadCheckingAccounts(Accounts):
    def __init__(self) -> None:
        self.on_event_loop: list[bool] = []

    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        try:
            asyncio.get_running_loop()
            self.on_event_loop.append(True)
        except RuntimeError:
            self.on_event_loop.append(False)
        return super().sign_in(account_id, password)


def client_with(accounts: Accounts, limits: ThrottleLimits) -> TestClient:
    app = coordinator_web(
        accounts=accounts,
        sign_in_limits=limits,
    )
    return TestClient(app, raise_server_exceptions=False)


def attempt(client: TestClient, account: str, password: str) -> int:
    return client.post(
        "/sign-in", data={"account": account, "password": password}, follow_redirects=False
    ).status_code


def test_failed_sign_ins_are_throttled_per_account_with_retry_after() -> None:
    client = client_with(Accounts(), ThrottleLimits(per_account=3, per_client=100, window_s=600))
    assert [attempt(client, "coordinator", "wrong-password-x") for _ in range(3)] == [401, 401, 401]
    throttled = client.post("/sign-in", data={"account": "coordinator", "password": PASSWORD})
    assert throttled.status_code == 429  # even the right password: a guesser learns nothing
    assert 0 < int(throttled.headers["Retry-After"]) <= 600 and "Too many failed sign-ins" in throttled.text
    assert attempt(client, "someone-else", "wrong-password-x") == 401  # another account is not locked


def test_failed_sign_ins_are_throttled_per_client_across_accounts() -> None:
    client = client_with(Accounts(), ThrottleLimits(per_account=100, per_client=4, window_s=600))
    assert {attempt(client, f"guess-{i}", "wrong-password-x") for i in range(4)} == {401}
    throttled = client.post("/sign-in", data={"account": "coordinator", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0


def test_a_success_clears_the_account_but_the_window_still_counts_for_the_client() -> None:
    throttle = SignInThrottle(ThrottleLimits(per_account=2, per_client=3, window_s=10))
    throttle.failed("a", "192.0.2.1", 0.0)
    throttle.succeeded("a")
    throttle.failed("a", "192.0.2.1", 1.0)
    assert throttle.retry_after("a", "192.0.2.1", 1.5) == 0
    throttle.failed("b", "192.0.2.1", 2.0)
    assert throttle.retry_after("c", "192.0.2.1", 2.5) == 8  # the client's first failure leaves at 10 s
    assert throttle.retry_after("c", "192.0.2.1", 10.5) == 0
    assert throttle.retry_after("c", "192.0.2.2", 2.5) == 0


def test_the_throttle_forgets_the_oldest_keys_beyond_its_bound() -> None:
    throttle = SignInThrottle(ThrottleLimits(per_account=1, per_client=1000, window_s=100, max_keys=50))
    for i in range(500):
        throttle.failed(f"account-{i}", "client", float(i) / 1000)
    assert len(throttle.accounts._failures) == 50
    assert throttle.retry_after("account-499", "other", 1.0) > 0


def test_the_password_is_checked_off_the_event_loop() -> None:
    accounts = ThreadCheckingAccounts()
    client = client_with(accounts, ThrottleLimits())
    assert attempt(client, "coordinator", PASSWORD) == 303
    assert attempt(client, "coordinator", "wrong-password-x") == 401
    assert accounts.on_event_loop == [False, False]


def test_refusals_are_logged_with_account_and_client_never_the_password() -> None:
    client = client_with(Accounts(), ThrottleLimits(per_account=1, per_client=100, window_s=60))
    with capture_logs() as logs:
        attempt(client, "coordinator", "wrong-password-x")
        attempt(client, "coordinator", "wrong-password-x")
        attempt(client, "synthetic-typed-here", "x")
        attempt(client, "Has Spaces And A Secret", "x")
    refused = [entry for entry in logs if entry["event"] in {"sign_in_refused", "sign_in_throttled"}]
    assert [entry["event"] for entry in refused] == [
        "sign_in_refused",
        "sign_in_throttled",
        "sign_in_refused",
        "sign_in_refused",
    ]
    assert all(entry["client"] == "testclient" for entry in refused)
    assert [entry["account_id"] for entry in refused] == [
        "coordinator",
        "coordinator",
        "synthetic-typed-here",
        "(not an account id)",
    ]
    assert "wrong-password-x" not in repr(logs) and "Secret" not in repr(logs)


class FakeView:
    def get(self, account_id: str) -> CoordinatorAccount | None:
        return {"coordinator": ACCOUNT, "disabled": ACCOUNT.model_copy(update={"disabled": True})}.get(
            account_id
        )


def test_an_unknown_or_disabled_account_costs_the_same_scrypt_work(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = AccountDirectory.__new__(AccountDirectory)  # its Kafka view replaced, never started
    directory.view = FakeView()  # type: ignore[assignment]
    directory.sign_in("nobody", "warm-up")  # anything made once (a dummy hash) is made before counting
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    for account_id in ("coordinator", "nobody", "disabled"):
        calls.clear()
        assert directory.sign_in(account_id, "wrong-password-x") is None
        assert calls == [ACCOUNT.password.n], account_id
    assert directory.sign_in("coordinator", PASSWORD) == ACCOUNT
