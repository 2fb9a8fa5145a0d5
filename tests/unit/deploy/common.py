"""What the deployment files are held to: each process's settings class, port and consumer group.

The compose file and the Kubernetes manifests configure processes through environment variables; these
helpers read those variables the way the processes do (pydantic-settings), so a misspelt name, a value
of the wrong type or a probe on the wrong port fails a test rather than a deployment.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from pydantic import AliasChoices

from schemas.topics import Service
from services.circles.agents import CirclesWorker
from services.circles.settings import CirclesSettings
from services.coordinator.agents import CoordinatorWorker
from services.coordinator.settings import CoordinatorSettings
from services.coordinator.web import build_web
from services.matching.agents import MatchingWorker
from services.matching.api import build_api as build_matching_api
from services.matching.settings import MatchingSettings
from services.notifications.agents import NotificationsWorker
from services.notifications.settings import NotificationsSettings
from services.ops.topology import consumed_topics
from services.processes import PROCESSES
from services.referrals.agents import ReferralsWorker
from services.referrals.api import build_api as build_referrals_api
from services.referrals.settings import ReferralsSettings
from services.runtime.settings import ConfigurationError, RuntimeSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"

PROCESS_SETTINGS: dict[str, tuple[type[RuntimeSettings], str]] = {
    "referrals-api": (ReferralsSettings, "api_port"),
    "referrals-worker": (ReferralsSettings, "health_port"),
    "matching-worker": (MatchingSettings, "health_port"),
    "matching-api": (MatchingSettings, "matching_api_port"),
    "coordinator-worker": (CoordinatorSettings, "health_port"),
    "coordinator-web": (CoordinatorSettings, "web_port"),
    "notifications-worker": (NotificationsSettings, "health_port"),
    "circles-worker": (CirclesSettings, "health_port"),
}
"""Each process, the settings it reads (services/processes.py) and the setting naming its HTTP port."""

BUILDERS: dict[str, Callable[[Any], object]] = {
    "referrals-api": build_referrals_api,
    "referrals-worker": ReferralsWorker,
    "matching-worker": MatchingWorker,
    "matching-api": build_matching_api,
    "coordinator-worker": CoordinatorWorker,
    "coordinator-web": build_web,
    "notifications-worker": NotificationsWorker,
    "circles-worker": CirclesWorker,
}
"""What each process builds from its settings before it connects to anything (services/processes.py):
building one from a deployment's environment fails where starting it would, short of Kafka."""

WORKER_SERVICE: dict[str, Service] = {
    "referrals-worker": Service.REFERRALS,
    "matching-worker": Service.MATCHING,
    "notifications-worker": Service.NOTIFICATIONS,
    "coordinator-worker": Service.COORDINATOR,
    "circles-worker": Service.CIRCLES,
}
"""The stream workers and the consumer group (service) each is a member of."""

HTTP_PROCESSES = sorted(set(PROCESS_SETTINGS) - set(WORKER_SERVICE))

assert set(PROCESS_SETTINGS) == set(BUILDERS) == set(PROCESSES), "a new process: add it here"


def env_names(settings_class: type[RuntimeSettings]) -> set[str]:
    """The environment variables a settings class reads (upper case; pydantic-settings ignores case)."""
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"CIRCLES_{field_name}".upper())
    return names


ALL_SETTINGS = set().union(*(env_names(cls) for cls, _ in PROCESS_SETTINGS.values()))


def settings_from(process: str, environment: dict[str, str]) -> RuntimeSettings:
    """The process's settings as it would read them from exactly this environment (nothing else)."""
    settings_class = PROCESS_SETTINGS[process][0]
    with mock.patch.dict(os.environ, environment, clear=True):
        return settings_class()


def build(process: str, environment: dict[str, str]) -> object:
    """The process's main object, built from exactly this environment; ConfigurationError if it cannot."""
    with mock.patch.dict(os.environ, environment, clear=True):
        return BUILDERS[process](PROCESS_SETTINGS[process][0]())


def needs_the_kek(process: str, tmp_path: Path) -> bool:
    """Whether the process refuses to start without a key-encryption key (it seals personal fields)."""
    try:
        build(process, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "CIRCLES_DATA_DIR": str(tmp_path)})
    except ConfigurationError as error:
        assert "key-encryption key" in str(error), error
        return True
    return False


def a_kek() -> str:
    """A key-encryption key as CIRCLES_KEK takes it (base64 of 32 bytes): a stand-in for the operator's."""
    return base64.b64encode(os.urandom(32)).decode()


def listening_port(process: str, environment: dict[str, str]) -> int:
    settings = settings_from(process, environment)
    port: int = getattr(settings, PROCESS_SETTINGS[process][1])
    assert port, f"{process} would listen on a random port: set its port"
    return port


METRICS_APART = {"referrals-api": "health_port"}
"""Processes whose /metrics is not on their (public) port: the partner API serves it on its probe listener
(issue 14, finding 7)."""


def metrics_port(process: str, environment: dict[str, str]) -> int:
    """Where Prometheus scrapes the process: its HTTP port, or its own metrics listener."""
    if process not in METRICS_APART:
        return listening_port(process, environment)
    port: int = getattr(settings_from(process, environment), METRICS_APART[process])
    assert port, f"{process} would serve /metrics on a random port: set it"
    return port


def max_useful_replicas(process: str) -> int:
    """Beyond the partitions of the topics its group consumes, a worker replica gets nothing to do."""
    return max(spec.partitions for spec in consumed_topics(WORKER_SERVICE[process]))


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolation_variables(text: str) -> dict[str, str | None]:
    """Each ``${NAME...}`` of a compose file: its default (``:-``/``-``), or None when it has none."""
    return {
        match.group(1): match.group(3) if match.group(2) in (":-", "-") else None
        for match in _VARIABLE.finditer(text)
    }


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's interpolation: a value from ``values``, else the default; ``$$`` is a literal ``$``."""

    def value(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        if name in values:
            return values[name]
        if operator in (":-", "-"):
            return str(default)
        raise KeyError(f"${{{name}}} has no value and no default")

    return _VARIABLE.sub(value, text).replace("$$", "$")
