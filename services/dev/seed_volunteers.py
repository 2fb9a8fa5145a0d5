"""A volunteers' page account for `circles dev up`: for the first volunteer of the sample active circle (as
the coordinator makes one with `circles volunteer account add`), once the coordinator's view of the circles,
which the volunteers' page reads, shows that circle."""

from __future__ import annotations

import asyncio
import time

from schemas.topics import COORDINATOR_CIRCLES
from services.coordinator.accounts import AccountExists
from services.coordinator.domain.circles import CircleView
from services.coordinator.domain.passwords import generated_password
from services.coordinator.volunteer_accounts import add_volunteer_account
from services.runtime.kafka import read_compacted
from services.runtime.settings import RuntimeSettings

WAIT_S = 90.0


async def volunteer_account(settings: RuntimeSettings) -> tuple[str, str] | None:
    """(volunteer id, one-time password) of the account made; None when no active circle showed in time."""
    topic = settings.topic_prefix + COORDINATOR_CIRCLES.name
    deadline = time.monotonic() + WAIT_S
    while True:
        circles = await read_compacted(settings.bootstrap_servers(), topic, CircleView.model_validate_json)
        active = sorted(
            (c for c in circles.values() if c.status == "active" and c.meetings), key=lambda c: c.formed_on
        )
        if active:
            break
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(1)
    volunteer_id, password = active[0].volunteer_ids[0], generated_password()
    try:
        await add_volunteer_account(settings, volunteer_id, password, created_by="coordinator")
    except AccountExists:
        return None
    return volunteer_id, password
