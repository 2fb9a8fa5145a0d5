"""The coordinator page's sessions: the generic account sessions (``services.accounts.sessions``) of kind
``coordinator``, ended sessions on ``circles.coordinator.sessions.v1``.

Every form carries the session's CSRF token and a POST without it is refused (``SameSite=Strict`` as well).
"""

from __future__ import annotations

from schemas.events.accounts import AccountKind
from schemas.topics import COORDINATOR_SESSIONS
from services.accounts.sessions import Session, SessionRegistry, SessionSigner
from services.runtime.settings import RuntimeSettings

COOKIE = "circles_session"
KIND: AccountKind = "coordinator"

__all__ = ["COOKIE", "KIND", "Session", "SessionSigner", "coordinator_sessions"]


def coordinator_sessions(settings: RuntimeSettings) -> SessionRegistry:
    return SessionRegistry(settings, COORDINATOR_SESSIONS, KIND, "/circles/coordinator/web")
