"""Where services read the time, so that tests and rehearsals can move it.

``CIRCLES_CLOCK=system`` (the default) is the real clock. ``CIRCLES_CLOCK=file:/path`` reads an ISO
date-time from that file on every call (the real clock when the file is missing), so a test, or a
training rehearsal of the scheme, can move a running service's "today" without touching the machine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FixedClock:
    """For unit tests: a clock that stays where it is put."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment


def clock_from_setting(setting: str) -> Clock:
    if setting == "system":
        return SystemClock()
    if setting.startswith("file:"):
        return FileClock(Path(setting.removeprefix("file:")))
    raise ValueError(f"CIRCLES_CLOCK must be 'system' or 'file:/path', not {setting!r}")


def today(clock: Clock) -> date:
    return clock.now().date()
