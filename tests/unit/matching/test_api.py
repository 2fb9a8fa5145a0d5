"""The matching API's HTTP edge, without a broker: what is refused before any state is read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.matching.api import create_api

AUTH = {"Authorization": "Bearer synthetic-token"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/volunteers/{id}/vetting", {"date": "2026-01-05"}),
        ("POST", "/v1/volunteers/{id}/conflicts", {"postcode_district": "HU7", "reason": "lives there"}),
        ("PUT", "/v1/volunteers/{id}/availability", {"availability": ["mon-eve"]}),
        ("POST", "/v1/volunteers/{id}/withdrawal", None),
    ],
)
def test_a_path_that_is_no_volunteer_id_is_a_422_problem_not_a_server_error(
    method: str, path: str, body: dict[str, object] | None
) -> None:
    """Found by Schemathesis: such an id reached the command model and failed there (500)."""
    client = TestClient(create_api(None, token="synthetic-token"))
    response = client.request(method, path.format(id="%C3%82T%C2%9F"), json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["path", "volunteer_id"]
