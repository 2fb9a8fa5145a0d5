"""Hardening of the pages and APIs (issue 14, finding 7): security headers on every answer, no-store on
everything but the static files, the CSRF token compared in constant time, a limit on whole form bodies."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.coordinator.web import MAX_FORM_BODY
from services.matching.api import create_api
from tests.unit.coordinator.test_web import signed_in

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def secure(response: Any) -> bool:
    policy = response.headers.get("content-security-policy", "")
    return (
        all(response.headers.get(name) == value for name, value in HEADERS.items())
        and "frame-ancestors 'none'" in policy
        and "default-src" in policy
    )


def test_every_page_has_the_security_headers_and_no_store(web) -> None:
    client, _ = web
    signed_out = client.get("/sign-in")
    assert secure(signed_out) and signed_out.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in signed_out.headers["content-security-policy"]
    assert "unsafe-inline" not in signed_out.headers["content-security-policy"]
    signed_in(client)
    for path in (
        "/proposals",
        "/volunteers",
        "/referrals",
        "/target",
        "/report",
        "/report.csv",
        "/operations",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert secure(response) and response.headers["cache-control"] == "no-store", path
    redirect = client.get("/", follow_redirects=False)
    assert secure(redirect)
    missing = client.get(f"/proposals/{uuid.uuid4()}")
    assert missing.status_code == 404 and secure(missing) and missing.headers["cache-control"] == "no-store"
    static = client.get("/static/site.css")
    assert (
        static.status_code == 200
        and secure(static)
        and "no-store" not in static.headers.get("cache-control", "")
    )


def test_the_csrf_token_is_compared_in_constant_time(web, monkeypatch: pytest.MonkeyPatch) -> None:
    client, matching = web
    csrf = signed_in(client)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    open_one = matching.items[0]
    forged = client.post(
        f"/proposals/{open_one.proposal_id}/decision", data={"outcome": "accept", "csrf_token": csrf[:-1]}
    )
    assert forged.status_code == 403 and matching.decisions == []
    assert (csrf[:-1].encode(), csrf.encode()) in compared


def test_a_form_body_over_the_limit_is_refused_whole(web) -> None:
    client, matching = web
    csrf = signed_in(client)
    open_one = matching.items[0]
    many_fields = {f"f{i}": "x" * 100 for i in range(MAX_FORM_BODY // 100)}  # each field small, all large
    refused = client.post(
        f"/proposals/{open_one.proposal_id}/decision",
        data={"outcome": "accept", "csrf_token": csrf, **many_fields},
    )
    assert refused.status_code == 413 and secure(refused) and matching.decisions == []
    big_sign_in = client.post(
        "/sign-in", data={"account": "coordinator", "password": "x" * (MAX_FORM_BODY + 1)}
    )
    assert big_sign_in.status_code == 413

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(MAX_FORM_BODY // 1000 + 2):
            yield b"x" * 1000

    streamed = client.post(
        "/sign-in", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    fine = client.post(
        f"/proposals/{open_one.proposal_id}/decision",
        data={"outcome": "accept", "csrf_token": csrf, "note": "n" * 900},
        follow_redirects=False,
    )
    assert fine.status_code == 303 and len(matching.decisions) == 1


def test_the_apis_send_the_security_headers_and_no_store() -> None:
    client = TestClient(create_api(None, token="synthetic-token"))
    refused = client.get("/v1/volunteers")
    assert refused.status_code == 401 and secure(refused) and refused.headers["cache-control"] == "no-store"
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")
