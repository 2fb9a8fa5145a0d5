"""Signed session cookies with a CSRF token: the coordinator page keeps no server-side sessions.

The cookie holds the account id, a CSRF token and an expiry, signed with HMAC-SHA256; every form carries
the CSRF token and a POST without the session's token is refused (``SameSite=Strict`` as well).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "circles_session"


@dataclass(frozen=True)
class Session:
    account_id: str
    display_name: str
    csrf: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: str, hours: float) -> None:
        self._key = hashlib.sha256(("circles-session:" + (secret or secrets.token_hex(32))).encode()).digest()
        self._seconds = hours * 3600

    def issue(self, account_id: str, display_name: str) -> tuple[str, Session]:
        session = Session(account_id, display_name, secrets.token_urlsafe(24), time.time() + self._seconds)
        payload = _b64(json.dumps(session.__dict__, separators=(",", ":")).encode())
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
        return session if session.expires > time.time() else None

    @property
    def max_age(self) -> int:
        return int(self._seconds)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
