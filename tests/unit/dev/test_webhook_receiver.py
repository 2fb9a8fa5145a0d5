"""The demo agencies' webhook receiver of `make run` (``services/dev/webhooks.py``): a delivery signed
with the agency's secret is kept and reported; a wrongly signed one is refused (401) and marked, as a real
receiver would; ``GET /`` lists what came. Real HTTP on the loopback interface."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.dev.webhooks import WebhookReceiver
from services.notifications.channels import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

SECRET = "whsec-test-only"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[WebhookReceiver, list[str]]]:
    said: list[str] = []
    started = WebhookReceiver(tmp_path / "webhooks", 0, {"mappa-humberside": SECRET}.get, said.append)
    started.start()
    try:
        yield started, said
    finally:
        started.stop()


def post(receiver: WebhookReceiver, agency: str, body: dict[str, str], secret: str) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, raw, int(time.time())),
        EVENT_ID_HEADER: str(body["event_id"]),
    }
    return httpx.post(receiver.url_for(agency), content=raw, headers=headers, timeout=5)


def test_a_signed_delivery_is_kept_reported_and_listed(receiver: tuple[WebhookReceiver, list[str]]) -> None:
    webhooks, said = receiver
    body = {"event_id": "e-1", "event_type": "concern_raised", "referral_id": "r-1", "concern_id": "c-1"}
    assert post(webhooks, "mappa-humberside", body, SECRET).status_code == 200
    kept = json.loads(next(webhooks.folder.glob("*-mappa-humberside-concern_raised.json")).read_text())
    assert kept["body"] == body
    assert kept["signature"] == "valid"
    assert kept["headers"][EVENT_ID_HEADER] == "e-1"
    assert said == [
        f"  webhook to mappa-humberside: concern_raised referral r-1, signature valid  "
        f"({next(webhooks.folder.glob('*.json')).name})"
    ]
    listed = httpx.get(webhooks.url + "/", timeout=5).json()
    assert [(row["agency_id"], row["event_type"], row["signature"]) for row in listed] == [
        ("mappa-humberside", "concern_raised", "valid")
    ]
    assert httpx.get(webhooks.url_for("hmp-hull"), timeout=5).json() == []


def test_a_wrong_signature_is_refused_and_an_unknown_secret_not_checked(
    receiver: tuple[WebhookReceiver, list[str]],
) -> None:
    webhooks, said = receiver
    body = {"event_id": "e-2", "event_type": "meeting_recorded", "referral_id": "r-2"}
    assert post(webhooks, "mappa-humberside", body, "not-the-secret").status_code == 401
    assert post(webhooks, "my-own-agency", body, "whatever").status_code == 200
    assert "mappa-humberside: meeting_recorded referral r-2, signature INVALID  (" in said[0]
    assert "my-own-agency: meeting_recorded referral r-2, signature not checked (no secret known" in said[1]
    assert httpx.post(webhooks.url + "/elsewhere", content=b"{}", timeout=5).status_code == 404
