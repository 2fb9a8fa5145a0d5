"""Every HTTP process serves what the deployments probe and scrape: /health, /ready and /metrics (workers
get them from the runtime's probe server, tested in test_metrics)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.unit.deploy.common import HTTP_PROCESSES, a_kek, build


@pytest.mark.parametrize("process", HTTP_PROCESSES)
async def test_it_serves_health_readiness_and_metrics(process: str, tmp_path: Path) -> None:
    # Building connects to nothing (that happens at start-up), so no broker is needed.
    environment = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CIRCLES_DATA_DIR": str(tmp_path)}
    app = build(process, environment | {"CIRCLES_KEK": a_kek()})
    assert isinstance(app, FastAPI)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/health", "/ready", "/metrics"} <= paths
