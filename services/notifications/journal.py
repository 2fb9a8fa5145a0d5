"""The sent-journal: a local, append-only file of notification ids whose message has gone out.

The delivery log records the intent (``pending``) in Kafka before a message is sent and the result after;
a worker killed between the send and the result's commit would otherwise send the message again when the
request is redelivered. Each id is appended and flushed the moment its send succeeds, so the restarted
worker finds it here and only records the result. (A crash in the instant between the receiving server
accepting a message and this append cannot be told apart from a failure: that message is sent again,
with the same ``X-Circles-Event-Id`` / ``Message-ID`` for the receiver to recognise.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


class SentJournal:
    def __init__(self, path: Path, compact_after: int = 50_000) -> None:
        self.path = path
        self.compact_after = compact_after
        self._ids: set[str] = set()
        self._file: IO[str] | None = None
        self.lines = 0

    async def start(self) -> None:
        self.open()

    async def stop(self) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with self.path.open() as existing:
                for line in existing:
                    if line.endswith("\n"):  # a torn last line (killed mid-write) is not a record
                        self._ids.add(line.strip())
                        self.lines += 1
        self._file = self.path.open("a")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __contains__(self, notification_id: object) -> bool:
        return str(notification_id) in self._ids

    def record(self, notification_id: str) -> None:
        """Append and flush to the operating system at once: a killed process loses nothing written."""
        assert self._file is not None, "journal not open"
        self._file.write(f"{notification_id}\n")
        self._file.flush()
        self._ids.add(notification_id)
        self.lines += 1

    def sync(self) -> None:
        """Force the appended lines to disk (a power cut, not only a killed process)."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def compact(self, keep: Callable[[str], bool]) -> int:
        """Rewrite the file with the ids still needed (whose results are not yet committed); returns how
        many were dropped. Called only when the file has grown past ``compact_after`` lines."""
        kept = sorted(notification_id for notification_id in self._ids if keep(notification_id))
        dropped = len(self._ids) - len(kept)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(f"{notification_id}\n" for notification_id in kept))
        with temporary.open() as written:
            os.fsync(written.fileno())
        self.close()
        temporary.replace(self.path)
        self._ids = set(kept)
        self.lines = len(kept)
        self._file = self.path.open("a")
        return dropped
