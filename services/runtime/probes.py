"""A worker's small HTTP server: ``/health`` (alive), ``/ready`` (recovered and consuming), ``/metrics``.

Workers have no HTTP API of their own, but orchestrators probe and Prometheus scrapes them all the same way.
aiohttp (already a dependency) runs it on the worker's own event loop, so ``/health`` answering means that
loop is turning. Port 0 picks a free port, which is logged (``probe_server_listening``).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services.runtime.logs import get_logger
from services.runtime.metrics import CONTENT_TYPE, Metrics

log = get_logger(__name__)
Readiness = Callable[[], tuple[bool, str]]
"""Returns (ready, phase): e.g. (False, "recovering")."""


class ProbeServer:
    def __init__(self, host: str, port: int, metrics: Metrics, readiness: Readiness) -> None:
        self.host = host
        self.port = port
        self.metrics = metrics
        self.readiness = readiness
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the port (the chosen one when asked for 0)."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("probe_server_listening", host=self.host, port=self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": self.metrics.service})

    async def _ready(self, _: web.Request) -> web.Response:
        ready, phase = self.readiness()
        return web.json_response({"status": "ready" if ready else phase}, status=200 if ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
