"""Sample circles for `circles dev up`, made through the paths people use: two referrals sent through the
partner API, their proposals accepted through the matching API (as the coordinator page does), then
meetings, a concern and an ending written as the pages write them (``circle_commands``). It leaves one
active circle with meetings (one with its minutes overdue) and an open urgent concern, one ended circle, and
an account on the volunteers' page for one of the active circle's volunteers.

Minutes go overdue 48 hours after the meeting's day began, and a circle formed today can only have met
today, so the stack's clock (``CIRCLES_CLOCK=file:<data>/clock``) is moved three days on while the circles
worker notices the overdue minutes, then given back to the real time (the file removed): the rehearsal
mechanism of docs/architecture.md, used once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from schemas.topics import COORDINATOR_CIRCLES
from services.coordinator.circle_commands import CircleCommands, KafkaCommandSink
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.passwords import generated_password
from services.coordinator.volunteer_accounts import add_volunteer_account
from services.runtime.kafka import read_compacted
from services.runtime.settings import RuntimeSettings

T = TypeVar("T")
BY = "coordinator:coordinator"
WAIT_S = 180.0
CLOCK_AHEAD = timedelta(days=3)


async def _until(what: str, probe: Callable[[], Awaitable[T | None]], seconds: float = WAIT_S) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(1.0)
    raise TimeoutError(f"sample circles: no {what} after {seconds:.0f}s (see the logs)")


async def seed_circles(
    settings: RuntimeSettings,
    *,
    partner_api: str,
    matching_api: str,
    agency_key: str,
    coordinator_token: str,
    bodies: list[dict[str, Any]],
    clock_file: Path | None,
) -> dict[str, str]:
    """Make the sample circles; returns the volunteers' page account (``volunteer_id``, ``password``)."""
    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    referral_ids: list[uuid.UUID] = []
    async with httpx.AsyncClient(base_url=partner_api, timeout=60) as partner:
        for body in bodies:
            answer = await partner.post(
                "/v1/referrals", json=body, headers={"Authorization": f"Bearer {agency_key}"}
            )
            answer.raise_for_status()
            referral_ids.append(uuid.UUID(answer.json()["referral_id"]))
    async with httpx.AsyncClient(
        base_url=matching_api, headers={"Authorization": f"Bearer {coordinator_token}"}, timeout=60
    ) as matching:

        async def proposals() -> dict[str, str] | None:
            listed = (await matching.get("/v1/proposals", params={"status": "open"})).json()
            found = {p["referral_id"]: p["proposal_id"] for p in listed if p["referral_id"] in wanted}
            return found if len(found) == len(wanted) else None

        wanted = {str(r) for r in referral_ids}
        for proposal_id in (await _until("proposals for the sample circles", proposals)).values():
            decided = await matching.post(f"/v1/proposals/{proposal_id}/decision", json={"outcome": "accept"})
            decided.raise_for_status()

    async def circles(check: Callable[[dict[str, CircleView]], bool]) -> dict[str, CircleView] | None:
        found = await read_compacted(
            bootstrap, prefix + COORDINATOR_CIRCLES.name, CircleView.model_validate_json
        )
        return found if check(found) else None

    formed = await _until("sample circles formed", lambda: circles(lambda f: wanted <= set(f)))
    active, ending = (formed[str(r)] for r in referral_ids)
    today = active.formed_on
    async with KafkaCommandSink(settings, "/circles/dev/seed") as sink:
        commands = CircleCommands(sink)
        await commands.meeting(
            active.referral_id,
            BY,
            held_on=today,
            attendance="attended",
            volunteer_ids=active.volunteer_ids,
            minutes="Synthetic minutes: the circle met for the first time and agreed how it will work.",
        )
        await commands.meeting(
            ending.referral_id, BY, held_on=today, attendance="late", volunteer_ids=ending.volunteer_ids[:2]
        )
        if clock_file is not None:
            await asyncio.to_thread(clock_file.write_text, (datetime.now(UTC) + CLOCK_AHEAD).isoformat())
            try:
                late = await commands.meeting(
                    active.referral_id,
                    BY,
                    held_on=today,
                    attendance="absent",
                    volunteer_ids=active.volunteer_ids,
                )
                await _until(
                    "overdue minutes",
                    lambda: circles(
                        lambda f: bool(
                            (m := f[str(active.referral_id)].meeting(late.meeting_id)) and m.minutes_overdue
                        )
                    ),
                )
            finally:
                await asyncio.to_thread(clock_file.unlink, missing_ok=True)
        await commands.concern(
            active.referral_id,
            BY,
            level="urgent",
            summary="Synthetic concern: the core member mentioned contact with a child at a family party.",
            raised_by=active.volunteer_ids[0],
        )
        await commands.end(ending.referral_id, BY, outcome="ended_early", reason="moved_away", ended_on=today)
    await _until(
        "the sample concern and ending",
        lambda: circles(
            lambda f: (
                bool(f[str(active.referral_id)].open_concerns())
                and f[str(ending.referral_id)].status == "ended"
            )
        ),
    )
    volunteer_id, password = active.volunteer_ids[0], generated_password()
    await add_volunteer_account(settings, volunteer_id, password, created_by="coordinator")
    return {"volunteer_id": volunteer_id, "password": password}


def circle_bodies(today: date, sample: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """Two referrals that the demo pool can match at once (Hull, in the community)."""
    return [
        sample(
            f"CIRCLE-DEMO-00{n}",
            today,
            risk__level="medium",
            custody__in_custody=False,
            custody__expected_release_date=None,
        )
        for n in (1, 2)
    ]
