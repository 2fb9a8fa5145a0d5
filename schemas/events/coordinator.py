"""Coordinator accounts (for the coordinator page), as snapshot events on a compacted topic."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

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


# -- the scheme's records against its agreed targets (issue 12): ids, dates and counts only ----------------

AuditArea = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$"),
    Field(description="What was audited, as a short code (e.g. supervision, minutes, risk-management)"),
]


class _SchemeRecord(Event):
    """A record the coordinator keeps for the commissioner's return, on a compacted topic keyed by its own
    id (so that every record stays for as long as the scheme runs); it names no one."""

    recorded_by: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Who recorded it: cli:<OS user> or coordinator:<account id>"
    )
    recorded_at: AwareDatetime

    def record_id(self) -> uuid.UUID:
        raise NotImplementedError

    def partition_key(self) -> str:
        return str(self.record_id())


class MappaPanelRecorded(_SchemeRecord):
    """A MAPPA Level 2 or 3 panel the scheme was asked to attend, and whether it attended."""

    event_type: ClassVar[str] = "circles.mappa.panel-recorded.v1"
    panel_id: uuid.UUID
    referral_id: uuid.UUID
    level: Literal[2, 3]
    held_on: date
    attended: bool

    def record_id(self) -> uuid.UUID:
        return self.panel_id


class MentoringSessionRecorded(_SchemeRecord):
    """A 1-1 mentoring session with a service user (a referral's core member)."""

    event_type: ClassVar[str] = "circles.mentoring.session-recorded.v1"
    session_id: uuid.UUID
    referral_id: uuid.UUID
    held_on: date
    minutes: int = Field(ge=1, le=24 * 60, description="Length of the session in minutes")

    def record_id(self) -> uuid.UUID:
        return self.session_id


class AuditRecorded(_SchemeRecord):
    """An audit of practice, its result and how many actions it left."""

    event_type: ClassVar[str] = "circles.audit.recorded.v1"
    audit_id: uuid.UUID
    held_on: date
    area: AuditArea
    result: Literal["met", "actions"]
    actions: int = Field(ge=0, le=1000)

    def record_id(self) -> uuid.UUID:
        return self.audit_id

    @model_validator(mode="after")
    def _actions_agree(self) -> AuditRecorded:
        if self.result == "met" and self.actions:
            raise ValueError("an audit whose result is 'met' leaves no actions")
        if self.result == "actions" and not self.actions:
            raise ValueError("an audit whose result is 'actions' leaves at least one action")
        return self


SchemeRecord = MappaPanelRecorded | MentoringSessionRecorded | AuditRecorded
