"""Coordinator accounts (for the coordinator page) and volunteer accounts (for the volunteers' page), as
snapshot events on compacted topics."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import PERSONAL, Contract, CoordinatorId, VolunteerId
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


class VolunteerAccount(Contract):
    """A volunteer's account for the volunteers' page, created by the coordinator. It names the volunteer
    by id only (the name stays in matching's sealed records), so it holds no personal data beyond the hash."""

    volunteer_id: VolunteerId
    password: PasswordHash
    disabled: bool = False
    sessions_since: AwareDatetime | None = Field(
        default=None,
        description="Sessions issued before this are over (set when disabled or its password is reset)",
    )
    created_by: CoordinatorId | None = Field(default=None, description="The coordinator who created it")
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def account_id(self) -> str:
        return self.volunteer_id


class VolunteerAccountSet(Event):
    """A volunteer's account was created, or its password or status changed (the whole account)."""

    event_type: ClassVar[str] = "circles.coordinator.volunteer-account-set.v1"
    account: VolunteerAccount

    def partition_key(self) -> str:
        return self.account.volunteer_id
