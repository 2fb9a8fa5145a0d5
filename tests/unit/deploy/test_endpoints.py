"""Every HTTP process serves what the deployments probe and scrape: /health, /ready and /metrics (workers
get them from the runtime's probe server, tested in test_metrics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from services.coordinator.web import build_web
from services.matching.api import build_api as build_matching_api
from services.referrals.api import build_api as build_referrals_api
from tests.unit.deploy.common import HTTP_PROCESSES, settings_from

BUILDERS: dict[str, Callable[[Any], FastAPI]] = {
    "referrals-api": build_referrals_api,
    "matching-api": build_matching_api,
    "coordinator-web": build_web,
}


def test_every_http_process_has_a_builder_here() -> None:
    assert sorted(BUILDERS) == HTTP_PROCESSES


@pytest.mark.parametrize("process", HTTP_PROCESSES)
async def test_it_serves_health_readiness_and_metrics(process: str) -> None:
    # Building connects to nothing (that happens at start-up), so no broker is needed.
    app = BUILDERS[process](settings_from(process, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}))
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/health", "/ready", "/metrics"} <= paths
