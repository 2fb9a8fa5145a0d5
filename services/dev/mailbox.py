"""A local mailbox for the demonstration: an SMTP server (aiosmtpd) that keeps each message as a file and
says a line about it, so the coordinator's emails can be seen without a real mail system."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Keeper:
    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        path = self.folder / f"{stamp}.eml"
        path.write_bytes(envelope.content)
        self.say(f"  mail to {', '.join(envelope.rcpt_tos)}: {message.get('Subject', '')}  ({path.name})")
        return "250 Message accepted"


class Mailbox:
    def __init__(self, folder: Path, port: int, say: Callable[[str], None]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = port
        self._controller = Controller(_Keeper(folder, say), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
