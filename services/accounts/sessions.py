"""Sessions of sign-in accounts of any kind, checked on the server side on every request.

The cookie holds the account kind and id, a session id, a CSRF token, when it was issued and when it
expires, signed with HMAC-SHA256 (``SessionSigner``). A valid signature is not enough: ``still_valid`` also
wants the account to exist and be enabled, the session to be issued after the account's ``sessions_since``
(set when it is disabled or its password reset), and the session not to have been ended (signed out). Ended
sessions are ``SessionEnded`` events on the account kind's sessions topic (``SessionRegistry``), which every
page process reads whole, so a sign-out on one process ends the session on all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from schemas.events.accounts import AccountKind, SessionEnded
from schemas.topics import TopicSpec
from services.runtime.codec import PLAIN
from services.runtime.kafka import CompactedView, Publisher
from services.runtime.logs import get_logger
from services.runtime.settings import RuntimeSettings
from services.runtime.supervision import together

log = get_logger(__name__)
MAX_SESSION_HOURS = 24.0
"""Sessions topics keep ended sessions for two days: no session may outlive the record that ended it."""


@dataclass(frozen=True)
class Session:
    account_id: str
    display_name: str
    csrf: str
    expires: float
    session_id: str = ""
    issued: float = 0.0
    kind: str = "coordinator"

    @property
    def digest(self) -> str:
        """What the sessions topic names the session by (the id itself never leaves the cookie)."""
        return hashlib.sha256(self.session_id.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and reads session cookies of one account kind (a cookie of another kind is no session)."""

    def __init__(self, secret: str, hours: float, kind: AccountKind = "coordinator") -> None:
        if not 0 < hours <= MAX_SESSION_HOURS:
            raise ValueError(f"sessions last more than 0 and at most {MAX_SESSION_HOURS:g} hours")
        self._key = hashlib.sha256(("circles-session:" + (secret or secrets.token_hex(32))).encode()).digest()
        self._seconds = hours * 3600
        self.kind = kind

    def issue(self, account_id: str, display_name: str) -> tuple[str, Session]:
        now = time.time()
        session = Session(
            account_id=account_id,
            display_name=display_name,
            csrf=secrets.token_urlsafe(24),
            expires=now + self._seconds,
            session_id=secrets.token_urlsafe(24),
            issued=now,
            kind=self.kind,
        )
        payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", session

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            session = Session(**json.loads(_unb64(payload)))
        except (ValueError, TypeError):
            return None
        if session.kind != self.kind or not session.session_id:
            return None
        return session if session.expires > time.time() else None

    @property
    def max_age(self) -> int:
        return int(self._seconds)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class AccountState(Protocol):
    @property
    def disabled(self) -> bool: ...
    @property
    def sessions_since(self) -> datetime | None: ...


class EndedSessions(Protocol):
    def ended(self, session: Session) -> bool: ...
    async def end(self, session: Session) -> None: ...


def still_valid(session: Session, account: AccountState | None, ended: EndedSessions) -> bool:
    """A signed, unexpired session is still valid only if its account exists and is enabled, it was issued
    after the account's sessions were last ended, and it was not ended itself (signed out)."""
    if account is None or account.disabled:
        return False
    if account.sessions_since is not None and session.issued < account.sessions_since.timestamp():
        return False
    return not ended.ended(session)


class LocalSessions:
    """Ended sessions of one process only: for tests and a single page process without Kafka."""

    def __init__(self) -> None:
        self._ended: dict[str, float] = {}

    def ended(self, session: Session) -> bool:
        return session.digest in self._ended

    async def end(self, session: Session) -> None:
        now = time.time()
        self._ended = {d: e for d, e in self._ended.items() if e > now}
        self._ended[session.digest] = session.expires


def session_ended(session: Session, kind: AccountKind) -> SessionEnded:
    return SessionEnded(
        account_kind=kind,
        account_id=session.account_id,
        session=session.digest,
        ended_at=datetime.now(UTC),
        expires_at=datetime.fromtimestamp(session.expires, UTC),
    )


class SessionRegistry:
    """Ended sessions of one account kind, shared by every page process through its sessions topic."""

    def __init__(self, settings: RuntimeSettings, topic: TopicSpec, kind: AccountKind, source: str) -> None:
        self.kind = kind
        self.topic = settings.topic_prefix + topic.name
        self.view: CompactedView[SessionEnded] = CompactedView(
            settings.bootstrap_servers(),
            self.topic,
            lambda value: PLAIN.parse(SessionEnded, value),
            client_id=f"circles-{kind}-sessions",
        )
        self.publisher = Publisher(settings.bootstrap_servers(), source, prefix=settings.topic_prefix)
        self._local = LocalSessions()

    async def start(self) -> None:
        await together(self.publisher.start(), self.view.start())

    async def stop(self) -> None:
        await self.view.stop()
        await self.publisher.stop()

    def ended(self, session: Session) -> bool:
        return self.view.get(session.digest) is not None or self._local.ended(session)

    async def end(self, session: Session) -> None:
        """Record the session as ended (acknowledged by the broker), then refuse it here at once."""
        event = session_ended(session, self.kind)
        envelope = self.publisher.envelope(event, f"session-{event.session}")
        await self.publisher.publish(event, envelope, topic=self.topic)
        await self._local.end(session)
        log.info("session_ended", account_kind=self.kind, account_id=session.account_id)
