"""Starting and stopping the parts a process holds open (consumers, publishers, views)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from services.runtime.supervision import together


class Part(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@asynccontextmanager
async def running(parts: Sequence[Part]) -> AsyncIterator[None]:
    """Start the parts together (``supervision.together``: independent Kafka clients, so at once rather than
    in turn); on leaving, stop them one by one in the reverse order of the list."""
    await together(*(part.start() for part in parts))
    try:
        yield
    finally:
        for part in reversed(parts):
            await part.stop()
