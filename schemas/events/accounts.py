"""Events of sign-in accounts of any kind (coordinators now, volunteers later): a session ended on the
server side. Each account kind has its own sessions topic, with this one event type."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.common import Slug
from schemas.envelope import Event

AccountKind = Literal["coordinator", "volunteer"]


class SessionEnded(Event):
    """A session was ended before its expiry (signed out): every page process refuses its cookie from now on.

    ``session`` is a digest of the session id, never the id itself; the record can go once the session
    would have expired anyway (``expires_at``), which the topic's retention guarantees."""

    event_type: ClassVar[str] = "circles.accounts.session-ended.v1"
    account_kind: AccountKind
    account_id: Slug
    session: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the session id (hex)"
    )
    reason: Literal["signed_out"] = "signed_out"
    ended_at: AwareDatetime
    expires_at: AwareDatetime

    def partition_key(self) -> str:
        return self.session
