"""A rehearsal's moved clock (``CIRCLES_CLOCK=file:``) holds for the coordinator's decisions and the
``circles volunteer`` commands too: walking a circle's life on 3 December 2026 with the clock three days on,
a proposal accepted then formed its circle on the real day (``decided_at`` and the envelope's time were the
machine's), and ``circles volunteer list`` judged readiness by the real day."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.coordinator_api import DecisionRequest
from schemas.envelope import Envelope, Event
from schemas.events.matching import MatchProposed
from services.matching import commands
from services.matching.operations import decide
from services.matching.views import MatchingState
from services.runtime.clock import FixedClock
from services.runtime.kafka import Publisher
from tests.unit.matching.test_workflow import POLICY, assessed, step, team

MOVED = datetime(2027, 3, 6, 19, 56, tzinfo=UTC)


class Recording(Publisher):
    """Keeps what it is asked to publish (no broker)."""

    sent: list[tuple[Event, Envelope]]

    async def publish(self, event: Event, envelope: Envelope, *, topic: str | None = None) -> Any:
        self.sent.append((event, envelope))


class NoAnswer:
    async def wait(self, event_id: str, seconds: float) -> None:
        return None


async def test_a_decision_is_dated_by_the_clock() -> None:
    state = MatchingState(POLICY, team(6), [])
    (proposed,) = step(state.matching, "on_assessed", assessed(uuid.uuid4()))
    assert isinstance(proposed, MatchProposed)
    publisher = Recording("127.0.0.1:9", "/tests", clock=FixedClock(MOVED))
    publisher.sent = []
    watcher: Any = NoAnswer()
    decision, _ = await decide(
        state, publisher, watcher, proposed.proposal_id, DecisionRequest(outcome="accept"), "coordinator"
    )
    assert decision.decided_at == MOVED
    (_, envelope), *_ = publisher.sent
    assert envelope.time == MOVED  # the matching worker forms the circle at this time


def test_the_volunteer_commands_take_today_from_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "clock").write_text(MOVED.isoformat())
    monkeypatch.setenv("CIRCLES_CLOCK", f"file:{tmp_path / 'clock'}")
    assert commands._today() == date(2027, 3, 6)
