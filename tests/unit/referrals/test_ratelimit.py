"""Per-agency rate limiting: the token bucket on a clock the test moves, and the partner API's 429."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.referrals.api import create_api, openapi_document
from services.referrals.ratelimit import RateLimiter
from services.referrals.readmodel import ReferralIndex
from services.runtime.clock import FixedClock
from tests.unit.referrals.test_api import NOW, Keys, Recorder, auth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate_then_the_wait_named() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=120, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # 2 tokens a second: the next one in half a second, said as 1 s
    clock.now += 0.5
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)] == [0, 0, 0, 1]  # refilled to the burst, not beyond


def test_agencies_have_buckets_of_their_own() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=1, clock=clock)
    assert limiter.take("a") == 0
    assert limiter.take("a") == 10  # one token every 10 s
    assert limiter.take("b") == 0
    clock.now += 4
    assert limiter.take("a") == 6


def test_zero_per_minute_means_no_limit() -> None:
    limiter = RateLimiter(per_minute=0, burst=1, clock=Clock())
    assert all(limiter.take("a") == 0 for _ in range(1000))


def test_the_api_answers_429_with_retry_after_per_agency() -> None:
    clock = Clock()
    recorder = Recorder()
    app = create_api(
        authenticator=Keys(),
        index=ReferralIndex(),
        publisher=recorder,
        access_log=recorder,
        base_url="http://partners.test",
        clock=FixedClock(NOW),
        limiter=RateLimiter(per_minute=60, burst=2, clock=clock),
    )
    client = TestClient(app, raise_server_exceptions=False)
    assert [client.get("/v1/referrals", headers=auth()).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/v1/referrals", headers=auth())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and "rate limit" in refused.json()["detail"]
    assert client.post("/v1/referrals", content=b"x", headers=auth()).status_code == 429  # before 415
    assert client.get("/v1/referrals", headers=auth("key-police")).status_code == 200
    assert client.get("/v1/referrals", headers=auth("wrong")).status_code == 401  # no bucket for strangers
    assert len(recorder.accesses) == 3  # refused requests touched nothing
    clock.now += 1
    assert client.get("/v1/referrals", headers=auth()).status_code == 200


def test_the_openapi_document_describes_the_429() -> None:
    paths = openapi_document()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            response = operation["responses"]["429"]
            assert "Retry-After" in response["headers"], (path, method)
            assert response["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
