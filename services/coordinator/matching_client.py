"""The matching service's HTTP API, as the coordinator page uses it (the contract's "same operations
over HTTP")."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from schemas.coordinator_api import (
    ACTING_ACCOUNT_HEADER,
    DecisionAccepted,
    DecisionRequest,
    ProposalView,
    VolunteerView,
)


class MatchingUnavailable(Exception):
    """The matching API did not answer; the page says so instead of failing."""


class MatchingRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class MatchingClient:
    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, **params: Any) -> Any:
        try:
            response = await self._client.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as error:
            raise MatchingUnavailable(type(error).__name__) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise MatchingUnavailable(f"HTTP {response.status_code}")
        return response.json()

    async def proposals(self, status: str | None = None) -> list[ProposalView]:
        return [ProposalView.model_validate(p) for p in await self._get("/v1/proposals", status=status) or []]

    async def proposal(self, proposal_id: uuid.UUID) -> ProposalView | None:
        found = await self._get(f"/v1/proposals/{proposal_id}")
        return ProposalView.model_validate(found) if found else None

    async def volunteers(self) -> list[VolunteerView]:
        return [VolunteerView.model_validate(v) for v in await self._get("/v1/volunteers") or []]

    async def decide(self, proposal_id: uuid.UUID, request: DecisionRequest, by: str) -> DecisionAccepted:
        """``by``: the signed-in account, recorded by the matching service as who decided."""
        try:
            response = await self._client.post(
                f"/v1/proposals/{proposal_id}/decision",
                json=request.model_dump(mode="json"),
                headers={ACTING_ACCOUNT_HEADER: by},
            )
        except httpx.HTTPError as error:
            raise MatchingUnavailable(type(error).__name__) from None
        if response.status_code == 200:
            return DecisionAccepted.model_validate(response.json())
        detail = (
            response.json().get("detail", "")
            if response.headers.get("content-type", "").endswith("json")
            else ""
        )
        raise MatchingRefused(response.status_code, detail or f"HTTP {response.status_code}")
