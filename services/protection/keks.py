"""Key-encryption keys (KEKs): they wrap the data keys, and never leave the process or the key file.

``KeyEncryptionKeys`` is the interface a KMS client (AWS KMS ``Encrypt``/``Decrypt``, Azure Key Vault
``wrapKey``/``unwrapKey``, Vault transit) would implement. ``LocalKeks`` reads AES-256 keys from a file or
the environment. Several KEKs may be configured: data keys are wrapped by the primary one and unwrapped by
whichever wrapped them, so a new primary can be introduced, data keys re-wrapped (``circles keys rewrap``),
and the old KEK retired.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.protection.errors import KekError

NONCE_BYTES = 12


@dataclass(frozen=True)
class WrappedKey:
    kek_id: str
    blob: bytes


class KeyEncryptionKeys(Protocol):
    @property
    def primary_id(self) -> str: ...

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes: ...


class LocalKeks:
    """AES-256-GCM key wrapping with keys held in memory; ``context`` (the subject) is authenticated."""

    def __init__(self, keys: dict[str, bytes], primary: str) -> None:
        if primary not in keys:
            raise KekError(f"the primary KEK {primary!r} is not among the configured keys")
        for kek_id, key in keys.items():
            if len(key) != 32:
                raise KekError(f"KEK {kek_id!r} must be 32 bytes (256 bits), not {len(key)}")
        self._keys = {kek_id: AESGCM(key) for kek_id, key in keys.items()}
        self._primary = primary

    @property
    def primary_id(self) -> str:
        return self._primary

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        nonce = os.urandom(NONCE_BYTES)
        return WrappedKey(self._primary, nonce + self._keys[self._primary].encrypt(nonce, data_key, context))

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        kek = self._keys.get(wrapped.kek_id)
        if kek is None:
            raise KekError(f"data key wrapped by KEK {wrapped.kek_id!r}, which is not configured")
        return kek.decrypt(wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:], context)

    @classmethod
    def from_file(cls, path: Path) -> LocalKeks:
        """``{"primary": "<id>", "keys": {"<id>": "<base64 of 32 random bytes>", ...}}``"""
        try:
            document = json.loads(path.read_text())
            keys = {kek_id: base64.b64decode(value) for kek_id, value in document["keys"].items()}
            primary = document["primary"]
        except FileNotFoundError:
            raise KekError(
                f"KEK file {path} does not exist (create one: circles keys new-kek {path})"
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KekError(
                f"KEK file {path} is not valid: expected {{'primary': id, 'keys': {{id: base64}}}}"
            ) from None
        return cls(keys, str(primary))

    @classmethod
    def from_base64(cls, value: str, kek_id: str = "env") -> LocalKeks:
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            raise KekError("CIRCLES_KEK is not base64") from None
        return cls({kek_id: key}, kek_id)


def add_kek(path: Path, kek_id: str | None = None) -> str:
    """Create the KEK file, or add a new primary KEK to it (rotation); only its owner may read it."""
    document: dict[str, object] = {"keys": {}}
    if path.exists():
        document = json.loads(path.read_text())
    keys = dict(document.get("keys") or {})  # type: ignore[call-overload]
    new_id = kek_id or f"kek-{secrets.token_hex(4)}"
    if new_id in keys:
        raise KekError(f"KEK {new_id!r} already exists in {path}")
    keys[new_id] = base64.b64encode(secrets.token_bytes(32)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"primary": new_id, "keys": keys}, handle, indent=2)
    path.with_suffix(".tmp").replace(path)
    return new_id
