"""The coordinator page's sessions: the generic account sessions (``services.accounts.sessions``) of kind
``coordinator``, ended sessions on ``circles.coordinator.sessions.v1``; the volunteers' page's, of kind
``volunteer``, on ``circles.coordinator.volunteer-sessions.v1``.

Every form carries the session's CSRF token and a POST without it is refused (``SameSite=Strict`` as well).
"""

from __future__ import annotations

from typing import Any

from schemas.events.accounts import AccountKind
from schemas.topics import COORDINATOR_SESSIONS, VOLUNTEER_SESSIONS
from services.accounts.sessions import Session, SessionRegistry, SessionSigner
from services.coordinator.settings import CoordinatorSettings
from services.runtime.settings import RuntimeSettings

COOKIE = "circles_session"
KIND: AccountKind = "coordinator"

VOLUNTEER_COOKIE = "circles_volunteer_session"
VOLUNTEER_KIND: AccountKind = "volunteer"

__all__ = [
    "COOKIE",
    "KIND",
    "VOLUNTEER_COOKIE",
    "VOLUNTEER_KIND",
    "Session",
    "SessionSigner",
    "coordinator_sessions",
    "volunteer_sessions",
    "warn_without_session_secret",
]


def warn_without_session_secret(settings: CoordinatorSettings, log: Any) -> None:
    """A page without a session secret signs with a random one: its sessions end when it restarts."""
    if not settings.session_secret:
        log.warning(
            "no_session_secret", hint="set CIRCLES_SESSION_SECRET, or sessions end when the page restarts"
        )


def coordinator_sessions(settings: RuntimeSettings) -> SessionRegistry:
    return SessionRegistry(settings, COORDINATOR_SESSIONS, KIND, "/circles/coordinator/web")


def volunteer_sessions(settings: RuntimeSettings) -> SessionRegistry:
    """The volunteers' page's sessions: kind ``volunteer``, ended ones on their own topic."""
    return SessionRegistry(
        settings, VOLUNTEER_SESSIONS, VOLUNTEER_KIND, "/circles/coordinator/volunteers-web"
    )
