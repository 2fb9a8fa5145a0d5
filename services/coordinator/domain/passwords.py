"""Password hashing for coordinator accounts (scrypt, standard library)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Protocol, TypeVar

from schemas.events.coordinator import PasswordHash

N, R, P = 2**14, 8, 1
MIN_LENGTH = 12


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> PasswordHash:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return PasswordHash(n=N, r=R, p=P, salt=salt.hex(), hash=digest.hex())


def verify_password(password: str, stored: PasswordHash) -> bool:
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(stored.salt), n=stored.n, r=stored.r, p=stored.p, dklen=32
    )
    return hmac.compare_digest(digest.hex(), stored.hash)


@cache
def _dummy() -> PasswordHash:
    return hash_password(secrets.token_urlsafe(24))


def verify_nothing(password: str) -> bool:
    """The work of ``verify_password`` against a hash no password matches: an unknown or disabled
    account answers in the time a known one does, so timing tells no one which accounts exist."""
    verify_password(password, _dummy())
    return False


class _Account(Protocol):
    @property
    def disabled(self) -> bool: ...
    @property
    def password(self) -> PasswordHash: ...


Account = TypeVar("Account", bound=_Account)


def account_if_password(account: Account | None, password: str) -> Account | None:
    """The account if it exists, is enabled and the password is its own; the same scrypt work whether or
    not it exists (``verify_nothing``). Blocking: a page calls it off its event loop."""
    if account is None or account.disabled:
        verify_nothing(password)
        return None
    return account if verify_password(password, account.password) else None


def generated_password() -> str:
    """A password to hand over once: 20 characters from an unambiguous alphabet."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(20))
