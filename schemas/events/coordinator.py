"""Coordinator accounts (for the coordinator page), as snapshot events on a compacted topic."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import PERSONAL, Contract, CoordinatorId
from schemas.envelope import Event


class PasswordHash(Contract):
    """scrypt with a random salt: slow enough to resist guessing a stolen hash, fast enough to sign in."""

    algorithm: str = "scrypt"
    n: int
    r: int
    p: int
    salt: str
    hash: str


class CoordinatorAccount(Contract):
    account_id: CoordinatorId
    display_name: Annotated[
        str, StringConstraints(min_length=1, max_length=120), Field(json_schema_extra=PERSONAL)
    ]
    password: PasswordHash
    disabled: bool = False
    sessions_since: AwareDatetime | None = Field(
        default=None,
        description="Sessions issued before this are over (set when disabled or its password is reset)",
    )
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CoordinatorAccountSet(Event):
    """An account was created, or its password or status changed; the event carries the whole account."""

    event_type: ClassVar[str] = "circles.coordinator.account-set.v1"
    account: CoordinatorAccount

    def partition_key(self) -> str:
        return self.account.account_id

    def data_subject(self) -> str:
        return f"coordinator:{self.account.account_id}"
