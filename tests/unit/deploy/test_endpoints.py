"""Every HTTP process serves what the deployments probe and scrape: /health, /ready and /metrics (workers
get them from the runtime's probe server, tested in test_metrics)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.runtime.http import install_probes
from tests.unit.deploy.common import HTTP_PROCESSES, METRICS_APART, a_kek, build


@pytest.mark.parametrize("process", HTTP_PROCESSES)
async def test_it_serves_health_readiness_and_metrics(process: str, tmp_path: Path) -> None:
    # Building connects to nothing (that happens at start-up), so no broker is needed.
    environment = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CIRCLES_DATA_DIR": str(tmp_path)}
    app = build(process, environment | {"CIRCLES_KEK": a_kek()})
    assert isinstance(app, FastAPI)
    paths = {getattr(route, "path", None) for route in app.routes}
    if process in METRICS_APART:  # a public API: /metrics on its own listener (test_metrics_listener)
        assert {"/health", "/ready"} <= paths and "/metrics" not in paths
    else:
        assert {"/health", "/ready", "/metrics"} <= paths


@pytest.mark.parametrize("process", HTTP_PROCESSES)
async def test_its_probes_are_the_runtimes_one_helper(process: str, tmp_path: Path) -> None:
    """One definition of /health and /ready for every HTTP process (services.runtime.http.install_probes),
    so a probe that works for one works for all."""
    environment = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CIRCLES_DATA_DIR": str(tmp_path)}
    app = build(process, environment | {"CIRCLES_KEK": a_kek()})
    assert isinstance(app, FastAPI)
    for route in app.routes:
        if getattr(route, "path", None) in ("/health", "/ready"):
            endpoint = getattr(route, "endpoint", None)
            assert getattr(endpoint, "__qualname__", "").startswith("install_probes."), route


async def test_the_probe_helper_says_alive_at_once_and_ready_only_when_ready() -> None:
    state = {"ready": False}
    app = FastAPI()
    install_probes(app, lambda: state["ready"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        assert (await client.get("/health")).json() == {"status": "alive"}
        starting = await client.get("/ready")
        assert starting.status_code == 503 and starting.json() == {"status": "starting"}
        state["ready"] = True
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert not any(getattr(route, "include_in_schema", True) for route in app.routes[-2:])
