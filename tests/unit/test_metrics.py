"""Metrics: the families every process exposes, request metrics by route template, the probe server."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.referrals.api import create_api
from services.referrals.readmodel import ReferralIndex
from services.runtime.metrics import Metrics
from services.runtime.probes import ProbeServer
from tests.samples import agency_record

FAMILIES = {
    "circles_events_in": "counter",
    "circles_events_out": "counter",
    "circles_processing_seconds": "histogram",
    "circles_errors": "counter",
    "circles_dead_letters": "counter",
    "circles_consumer_lag": "gauge",
    "circles_http_requests": "counter",
    "circles_http_request_seconds": "histogram",
}


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_every_family_is_declared_and_labelled_with_the_service() -> None:
    metrics = Metrics("test-worker")
    metrics.consumed("topic-a", 3)
    metrics.published("topic-b")
    metrics.handled("topic-a", 0.002)
    metrics.error("refused")
    metrics.dead_lettered("topic-a")
    metrics.set_lag("topic-a", 2, 7)
    metrics.http_request("GET", "/x/{id}", 200, 0.01)
    found = families(metrics.render().decode())
    assert {name: found[name].type for name in FAMILIES} == FAMILIES
    for name in FAMILIES:
        assert all(sample.labels["service"] == "test-worker" for sample in found[name].samples)
    (lag,) = found["circles_consumer_lag"].samples
    assert lag.labels == {"service": "test-worker", "topic": "topic-a", "partition": "2"} and lag.value == 7
    metrics.forget_lag("topic-a", 2)
    metrics.forget_lag("topic-a", 2)  # twice is harmless
    assert not families(metrics.render().decode())["circles_consumer_lag"].samples


class _Nobody:
    def authenticate(self, api_key: str) -> Any:
        return agency_record("mappa") if api_key == "good" else None


class _Nowhere:
    async def publish_command(self, command: Any, correlation_id: str) -> None:
        raise AssertionError("nothing is published here")

    async def record(self, *_: Any, **__: Any) -> None:
        return None  # the access log


def test_requests_are_counted_by_route_template_even_when_refused_before_routing() -> None:
    metrics = Metrics("referrals-api", process_collector=False)
    app = create_api(
        authenticator=_Nobody(),
        index=ReferralIndex(),
        publisher=_Nowhere(),
        access_log=_Nowhere(),
        base_url="",
        metrics=metrics,
    )
    client = TestClient(app, raise_server_exceptions=False)
    for _ in range(2):
        assert client.get(f"/v1/referrals/{uuid.uuid4()}").status_code == 401  # refused by the gate
    assert (
        client.get(f"/v1/referrals/{uuid.uuid4()}", headers={"Authorization": "Bearer good"}).status_code
        == 404
    )
    assert client.get("/no/such/page").status_code == 404
    assert client.delete("/health").status_code == 405
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in families(scraped.text)["circles_http_requests"].samples
    }
    assert counts[("GET", "/v1/referrals/{referral_id}", "401")] == 2
    assert counts[("GET", "/v1/referrals/{referral_id}", "404")] == 1
    assert counts[("GET", "<unmatched>", "404")] == 1
    assert counts[("DELETE", "/health", "405")] == 1
    assert "/metrics" not in app.openapi()["paths"]


async def test_probe_server_answers_health_ready_and_metrics_on_a_chosen_port() -> None:
    phase = {"now": (False, "recovering")}
    server = ProbeServer("127.0.0.1", 0, Metrics("probe-test", process_collector=False), lambda: phase["now"])
    port = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health")).json() == {"status": "alive", "service": "probe-test"}
            not_ready = await client.get("/ready")
            assert not_ready.status_code == 503 and not_ready.json() == {"status": "recovering"}
            phase["now"] = (True, "ready")
            assert (await client.get("/ready")).status_code == 200
            assert "circles_consumer_lag" in families((await client.get("/metrics")).text)
    finally:
        await server.stop()
