"""Deterministic ids: an effect computed again after a crash gets the id it had the first time, so
consumers that de-duplicate on ids see it once."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4f7a-9a8e-2b0c4d5e6f70")


def derive_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "\x1f".join(str(part) for part in parts))
