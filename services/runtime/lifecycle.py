"""Starting and stopping the parts a process holds open (consumers, publishers, views), in one order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol


class Part(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@asynccontextmanager
async def running(parts: Sequence[Part]) -> AsyncIterator[None]:
    """Start each part in turn; on leaving, stop them in the reverse order (what started last, first)."""
    for part in parts:
        await part.start()
    try:
        yield
    finally:
        for part in reversed(parts):
            await part.stop()
