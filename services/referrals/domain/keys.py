"""Partner API keys: shown once, stored only as a salted SHA-256.

A key is ``ck_<key id>_<secret>``: the key id finds the agency without scanning, the secret is 256 random
bits. With that much entropy a fast hash is as safe as a slow one and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from schemas.events.agencies import ApiKeyHash

PREFIX = "ck"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def new_api_key(now: datetime) -> tuple[str, ApiKeyHash]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return f"{PREFIX}_{key_id}_{secret}", ApiKeyHash(
        key_id=key_id, salt=salt, sha256=_digest(salt, secret), created_at=now
    )


def key_id_of(api_key: str) -> str | None:
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def verify(api_key: str, stored: ApiKeyHash) -> bool:
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[1] != stored.key_id:
        return False
    return hmac.compare_digest(_digest(stored.salt, parts[2]), stored.sha256)


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def new_kafka_signing_key() -> str:
    """The agency's key for signing its Kafka submissions (``domain.inbound_signature``)."""
    return f"ksk_{secrets.token_urlsafe(32)}"
