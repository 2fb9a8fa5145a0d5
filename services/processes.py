"""Every process type of the system, by name: ``circles run <name>`` starts one in the foreground.

The run command, the tests and the deployment manifests all start processes through this one list.
Each process imports what it needs when it starts: the list itself is cheap to import (``circles --help``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

START_GATE = "CIRCLES_START_GATE"
"""A file a process waits for before it connects to anything (``wait_for_start_gate``)."""
GATE_LIMIT_S = 600.0


def wait_for_start_gate(poll_s: float = 0.05) -> None:
    """Wait, with the process's modules imported and its app built, until the file ``CIRCLES_START_GATE``
    names exists; no wait without the variable. ``circles dev up`` starts its processes while the broker is
    still starting and opens the gate once the broker answers and the topics exist, so that importing
    (seconds of CPU each) overlaps the broker's start instead of following it. A process whose starter is
    gone (it was adopted by another parent), or whose gate stays shut for ``GATE_LIMIT_S``, exits."""
    gate = os.environ.get(START_GATE)
    if not gate:
        return
    path, parent, deadline = Path(gate), os.getppid(), time.monotonic() + GATE_LIMIT_S
    while not path.exists():
        if os.getppid() != parent:
            raise SystemExit("the stack that started this process is gone")
        if time.monotonic() > deadline:
            raise SystemExit(f"{gate} was not opened within {GATE_LIMIT_S:.0f} s")
        time.sleep(poll_s)


def serve(app: Any, host: str, port: int, graceful_s: int) -> None:
    import uvicorn

    wait_for_start_gate()
    uvicorn.run(
        app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=graceful_s
    )


def referrals_api() -> None:
    from services.referrals.api import build_api
    from services.referrals.settings import ReferralsSettings
    from services.runtime.logs import configure_logging

    settings = ReferralsSettings()
    configure_logging("referrals-api", settings.log_level)
    serve(build_api(settings), settings.api_host, settings.api_port, 10)


def referrals_worker() -> None:
    from services.referrals.agents import ReferralsWorker
    from services.referrals.settings import ReferralsSettings
    from services.runtime.logs import configure_logging
    from services.runtime.worker import run_worker

    settings = ReferralsSettings()
    configure_logging("referrals-worker", settings.log_level)
    worker = ReferralsWorker(settings).worker
    wait_for_start_gate()
    run_worker(worker)


def matching_worker() -> None:
    from services.matching.agents import MatchingWorker
    from services.matching.settings import MatchingSettings
    from services.runtime.logs import configure_logging
    from services.runtime.worker import run_worker

    settings = MatchingSettings()
    configure_logging("matching-worker", settings.log_level)
    worker = MatchingWorker(settings).worker
    wait_for_start_gate()
    run_worker(worker)


def matching_api() -> None:
    from services.matching.api import build_api
    from services.matching.settings import MatchingSettings
    from services.runtime.logs import configure_logging

    settings = MatchingSettings()
    configure_logging("matching-api", settings.log_level)
    serve(build_api(settings), settings.matching_api_host, settings.matching_api_port, 10)


def coordinator_worker() -> None:
    from services.coordinator.agents import CoordinatorWorker
    from services.coordinator.settings import CoordinatorSettings
    from services.runtime.logs import configure_logging
    from services.runtime.worker import run_worker

    settings = CoordinatorSettings()
    configure_logging("coordinator-worker", settings.log_level)
    worker = CoordinatorWorker(settings).worker
    wait_for_start_gate()
    run_worker(worker)


def notifications_worker() -> None:
    from services.notifications.agents import NotificationsWorker
    from services.notifications.settings import NotificationsSettings
    from services.runtime.logs import configure_logging
    from services.runtime.worker import run_worker

    settings = NotificationsSettings()
    configure_logging("notifications-worker", settings.log_level)
    worker = NotificationsWorker(settings).worker
    wait_for_start_gate()
    run_worker(worker)


def circles_worker() -> None:
    from services.circles.agents import CirclesWorker
    from services.circles.settings import CirclesSettings
    from services.runtime.logs import configure_logging
    from services.runtime.worker import run_worker

    settings = CirclesSettings()
    configure_logging("circles-worker", settings.log_level)
    worker = CirclesWorker(settings).worker
    wait_for_start_gate()
    run_worker(worker)


def coordinator_web() -> None:
    from services.coordinator.settings import CoordinatorSettings
    from services.coordinator.web import build_web
    from services.runtime.logs import configure_logging

    settings = CoordinatorSettings()
    configure_logging("coordinator-web", settings.log_level)
    serve(build_web(settings), settings.web_host, settings.web_port, 5)


def volunteers_web() -> None:
    from services.coordinator.settings import CoordinatorSettings
    from services.coordinator.volunteers_web import build_volunteers_web
    from services.runtime.logs import configure_logging

    settings = CoordinatorSettings()
    configure_logging("volunteers-web", settings.log_level)
    serve(build_volunteers_web(settings), settings.volunteers_web_host, settings.volunteers_web_port, 5)


PROCESSES: dict[str, Callable[[], None]] = {
    "referrals-api": referrals_api,
    "referrals-worker": referrals_worker,
    "matching-worker": matching_worker,
    "matching-api": matching_api,
    "coordinator-worker": coordinator_worker,
    "coordinator-web": coordinator_web,
    "volunteers-web": volunteers_web,
    "notifications-worker": notifications_worker,
    "circles-worker": circles_worker,
}

WORKERS = (
    "referrals-worker",
    "matching-worker",
    "notifications-worker",
    "coordinator-worker",
    "circles-worker",
)
"""The Kafka workers among the processes, in the order a whole stack starts them."""

SERVICE_OF: dict[str, str] = {"volunteers-web": "coordinator"}
"""The service a process belongs to (its Kafka principal and data), where its name does not say it:
``<service>-<kind>`` otherwise. The volunteers' page is the coordinator service's second page."""


def service_of(process: str) -> str:
    return SERVICE_OF.get(process, process.rsplit("-", 1)[0])
