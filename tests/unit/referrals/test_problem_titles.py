"""A 422 from the partner API names what was invalid: an acknowledgement of a concern is not an "Invalid
referral" (seen walking issue 11). The app's own handlers, no broker: the body is refused before any route
runs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from services.referrals.api import invalid_title
from services.runtime.http import install_problem_handlers


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str


def test_a_422_is_titled_by_what_the_route_takes() -> None:
    app = FastAPI()
    install_problem_handlers(app, invalid_title=invalid_title)

    @app.post("/v1/concerns/{concern_id}/acknowledgement")
    async def acknowledge(concern_id: str, body: Body) -> dict[str, str]:
        return {}

    @app.post("/v1/referrals")
    async def submit(body: Body) -> dict[str, str]:
        return {}

    client = TestClient(app)
    refused = client.post("/v1/concerns/c-1/acknowledgement", json={"note": 5, "by": "me"})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["title"] == "Invalid acknowledgement"
    assert len(refused.json()["errors"]) == 2
    unreadable = client.post(
        "/v1/concerns/c-1/acknowledgement", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert unreadable.status_code == 422 and unreadable.json()["title"] == "Invalid acknowledgement"
    assert client.post("/v1/referrals", json={}).json()["title"] == "Invalid referral"
