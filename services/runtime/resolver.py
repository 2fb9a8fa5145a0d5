"""aiohttp's resolver under the destination policy (``destinations.py``): for the webhook sender only, so
that the processes that merely read the policy's settings do not import aiohttp (issue 13: their start)."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from services.runtime.destinations import DestinationPolicy, check_address


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name any of whose addresses the policy refuses (checked where the
    connection is made, so a name cannot resolve to a public address when checked and a private one when
    used)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self.policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        for result in found:
            check_address(result["host"], self.policy)
        return found

    async def close(self) -> None:
        await self._resolver.close()
