"""What the deployment files are held to: each process's settings class, port and consumer group.

The compose file and the Kubernetes manifests configure processes through environment variables; these
helpers read those variables the way the processes do (pydantic-settings), so a misspelt name, a value
of the wrong type or a probe on the wrong port fails a test rather than a deployment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from unittest import mock

from pydantic import AliasChoices

from schemas.topics import Service
from services.coordinator.settings import CoordinatorSettings
from services.matching.settings import MatchingSettings
from services.notifications.settings import NotificationsSettings
from services.ops.topology import consumed_topics
from services.processes import PROCESSES
from services.referrals.settings import ReferralsSettings
from services.runtime.settings import RuntimeSettings

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
}
"""Each process, the settings it reads (services/processes.py) and the setting naming its HTTP port."""

WORKER_SERVICE: dict[str, Service] = {
    "referrals-worker": Service.REFERRALS,
    "matching-worker": Service.MATCHING,
    "notifications-worker": Service.NOTIFICATIONS,
    "coordinator-worker": Service.COORDINATOR,
}
"""The stream workers and the consumer group (service) each is a member of."""

HTTP_PROCESSES = sorted(set(PROCESS_SETTINGS) - set(WORKER_SERVICE))

assert set(PROCESS_SETTINGS) == set(PROCESSES), "a new process: say here which settings and port it has"


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


def listening_port(process: str, environment: dict[str, str]) -> int:
    settings = settings_from(process, environment)
    port: int = getattr(settings, PROCESS_SETTINGS[process][1])
    assert port, f"{process} would listen on a random port: set its port"
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
