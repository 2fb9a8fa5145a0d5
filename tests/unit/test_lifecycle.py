"""A process's parts all start before it serves, and stop in the reverse order, also when the body fails."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime.lifecycle import running


class Part:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal

    async def start(self) -> None:
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


def test_parts_start_before_serving_and_stop_in_reverse_order_even_when_the_body_fails() -> None:
    journal: list[str] = []
    parts = [Part("accounts", journal), Part("sessions", journal), Part("views", journal)]

    async def main() -> None:
        async with running(parts):
            journal.append("serving")
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        asyncio.run(main())
    assert sorted(journal[:3]) == ["start accounts", "start sessions", "start views"]
    assert journal[3:] == ["serving", "stop views", "stop sessions", "stop accounts"]
