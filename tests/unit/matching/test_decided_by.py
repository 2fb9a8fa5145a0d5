"""Who decided (issue 14, finding 5): the page's signed-in account reaches the matching API in a header and
the API hands it on as ``decided_by``; the CLI records ``--by`` or else the OS user running it."""

from __future__ import annotations

import getpass
import uuid
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from schemas.coordinator_api import ACTING_ACCOUNT_HEADER, DecisionRequest
from services.coordinator.matching_client import MatchingClient
from services.matching import api as matching_api
from services.matching import commands
from services.runtime.cli_support import CliError

AUTH = {"Authorization": "Bearer synthetic-token"}


class Made:
    decision_id = proposal_id = referral_id = uuid.uuid4()
    outcome = "accept"


class Backend:
    publisher = decisions = None

    def state(self) -> None:
        return None

    async def sync(self) -> None:
        return None


def test_the_api_records_the_account_the_page_names(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def decide(*args: Any) -> tuple[Made, list[str]]:
        seen.append(args[-1])
        return Made(), []

    monkeypatch.setattr(matching_api, "decide", decide)
    client = TestClient(matching_api.create_api(Backend(), token="synthetic-token"))
    path = f"/v1/proposals/{uuid.uuid4()}/decision"
    named = client.post(path, json={"outcome": "accept"}, headers={**AUTH, ACTING_ACCOUNT_HEADER: "ann-lee"})
    assert named.status_code == 200, named.text
    assert client.post(path, json={"outcome": "accept"}, headers=AUTH).status_code == 200
    bad = client.post(path, json={"outcome": "accept"}, headers={**AUTH, ACTING_ACCOUNT_HEADER: "Ann Lee"})
    assert bad.status_code == 422
    assert seen == ["ann-lee", "coordinator"]


async def test_the_page_client_names_the_account() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = MatchingClient("http://matching.invalid", "synthetic-token")
    transport = httpx.MockTransport(answer)
    client._client = httpx.AsyncClient(base_url="http://matching.invalid", transport=transport)
    with pytest.raises(Exception, match="HTTP 500"):
        await client.decide(uuid.uuid4(), DecisionRequest(outcome="accept"), "ann-lee")
    assert sent[0].headers[ACTING_ACCOUNT_HEADER] == "ann-lee"


def test_the_cli_records_by_or_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIRCLES_COORDINATOR_ID", raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "Jo.Bloggs")
    assert commands._by() == "cli-jo-bloggs"
    assert commands._by("ann-lee") == "ann-lee"
    monkeypatch.setenv("CIRCLES_COORDINATOR_ID", "sam")
    assert commands._by() == "sam"
    with pytest.raises(CliError, match="lower-case letters"):
        commands._by("Ann Lee")
    refused = CliRunner().invoke(commands.proposal, ["accept", str(uuid.uuid4()), "--by", "Ann Lee"])
    assert refused.exit_code != 0
