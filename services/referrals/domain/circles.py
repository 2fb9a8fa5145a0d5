"""A referral's circle after formation, as the referrals service keeps it for the partner API.

Built from the circles service's facts (``circles.circles.events.v1``: ids, dates and states only), plus one
thing the facts never carry: a concern's summary, taken from the ``RaiseConcern`` command (sealed under the
referral's data key there, and sealed again under it in this service's table), so that the owning agency
can read it with ``GET /v1/concerns/{id}``. Minutes are never kept here.

Plain functions over pydantic models: each takes the current entry (or none) and a fact or command, and
returns the entry after it, or ``None`` when nothing changes (a fact seen twice, a fact the API does not
show). The facts of one referral arrive in order (one partition); a concern's summary may arrive before or
after its ``ConcernRaised`` fact (two topics), so either can create the concern.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.common import PERSONAL, AgencyId, ReferralStatus
from schemas.events.circles import (
    CircleActivated,
    CircleEnded,
    CircleFact,
    CircleOutcome,
    CircleStatus,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    ConcernState,
    EndReason,
    MeetingRecorded,
    RaiseConcern,
    ReviewRecorded,
    circle_id_of,
)
from schemas.partner_api import CircleView, ConcernDetail, ConcernLinks, ConcernView

Sealed = Annotated[str, Field(json_schema_extra=PERSONAL)]
"""A concern's summary: sealed with the referral's key in the changelog."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConcernEntry(_Entry):
    concern_id: uuid.UUID
    level: ConcernLevel | None = None
    raised_at: AwareDatetime | None = Field(default=None, description="None: only its summary is known yet")
    acknowledged_at: AwareDatetime | None = None
    escalated_at: AwareDatetime | None = None
    summary: Sealed | None = None

    @property
    def raised(self) -> bool:
        return self.raised_at is not None and self.level is not None

    @property
    def state(self) -> ConcernState:
        return ConcernState.OPEN if self.acknowledged_at is None else ConcernState.ACKNOWLEDGED


class CircleEntry(_Entry):
    """One referral's circle (table key: the referral id)."""

    referral_id: uuid.UUID
    agency_id: AgencyId | None = None
    formed_on: date | None = Field(default=None, description="None until the circle's activation is seen")
    status: CircleStatus = CircleStatus.ACTIVE
    meeting_ids: list[uuid.UUID] = []
    last_meeting_on: date | None = None
    next_review_due: date | None = None
    outcome: CircleOutcome | None = None
    end_reason: EndReason | None = None
    ended_on: date | None = None
    concerns: list[ConcernEntry] = []

    @property
    def circle_id(self) -> str:
        return circle_id_of(self.referral_id)

    @property
    def formed(self) -> bool:
        return self.formed_on is not None and self.agency_id is not None

    def concern(self, concern_id: uuid.UUID) -> ConcernEntry | None:
        return next((c for c in self.concerns if c.concern_id == concern_id), None)

    def raised_concerns(self) -> list[ConcernEntry]:
        return [c for c in self.concerns if c.raised]


# -- changes -----------------------------------------------------------------------------------------------


def _with_concern(entry: CircleEntry, concern_id: uuid.UUID, **changes: object) -> CircleEntry:
    current = entry.concern(concern_id) or ConcernEntry(concern_id=concern_id)
    updated = current.model_copy(update=changes)
    if updated == current and entry.concern(concern_id) is not None:
        return entry
    others = [c for c in entry.concerns if c.concern_id != concern_id]
    return entry.model_copy(update={"concerns": [*others, updated]})


def apply_fact(current: CircleEntry | None, fact: CircleFact) -> CircleEntry | None:
    """The entry after ``fact``; ``None`` when it changes nothing the API shows."""
    entry = current or CircleEntry(referral_id=fact.referral_id)
    entry = entry.model_copy(update={"agency_id": fact.agency_id})
    if isinstance(fact, CircleActivated):
        entry = entry.model_copy(
            update={"formed_on": fact.formed_on, "next_review_due": fact.next_review_due}
        )
    elif isinstance(fact, MeetingRecorded):
        if fact.meeting_id in entry.meeting_ids:
            return None
        last = max(d for d in (entry.last_meeting_on, fact.held_on) if d is not None)
        entry = entry.model_copy(
            update={"meeting_ids": [*entry.meeting_ids, fact.meeting_id], "last_meeting_on": last}
        )
    elif isinstance(fact, ReviewRecorded):
        entry = entry.model_copy(update={"next_review_due": fact.next_review_due})
    elif isinstance(fact, ConcernRaised):
        entry = _with_concern(entry, fact.concern_id, level=fact.level, raised_at=fact.raised_at)
    elif isinstance(fact, ConcernAcknowledged):
        entry = _with_concern(
            entry,
            fact.concern_id,
            level=fact.level,
            raised_at=fact.raised_at,
            acknowledged_at=fact.acknowledged_at,
        )
    elif isinstance(fact, ConcernEscalated):
        entry = _with_concern(
            entry, fact.concern_id, level=fact.level, raised_at=fact.raised_at, escalated_at=fact.escalated_at
        )
    elif isinstance(fact, CircleEnded):
        entry = entry.model_copy(
            update={
                "status": CircleStatus.ENDED,
                "outcome": fact.outcome,
                "end_reason": fact.reason,
                "ended_on": fact.ended_on,
            }
        )
    else:
        return None  # minutes submitted or overdue, an extension: not in the agency's view
    return entry if entry != current else None


def add_summary(current: CircleEntry | None, command: RaiseConcern) -> CircleEntry | None:
    """Keep a raised concern's summary (sealed in the table) for its agency; the first one written wins."""
    entry = current or CircleEntry(referral_id=command.referral_id)
    known = entry.concern(command.concern_id)
    if known is not None and known.summary is not None:
        return None
    return _with_concern(entry, command.concern_id, summary=command.summary)


# -- what the partner API shows ---------------------------------------------------------------------------


def referral_status(status: ReferralStatus, entry: CircleEntry | None) -> ReferralStatus:
    """A formed referral whose circle has ended is ``circle_ended``."""
    ended = entry is not None and entry.formed and entry.status is CircleStatus.ENDED
    return ReferralStatus.CIRCLE_ENDED if ended and status is ReferralStatus.CIRCLE_FORMED else status


def circle_view(entry: CircleEntry | None, acknowledged: Iterable[uuid.UUID] = ()) -> CircleView | None:
    """The ``circle`` object of ``GET /v1/referrals/{id}``; ``acknowledged``: concerns this API has just
    acknowledged (not in the facts yet)."""
    if entry is None or not entry.formed or entry.formed_on is None:
        return None
    just = set(acknowledged)
    active = entry.status is CircleStatus.ACTIVE
    return CircleView(
        circle_id=entry.circle_id,
        status=entry.status,
        formed_on=entry.formed_on,
        meetings_held=len(entry.meeting_ids),
        last_meeting_on=entry.last_meeting_on,
        next_review_due=entry.next_review_due if active else None,
        open_concerns=sum(
            1 for c in entry.raised_concerns() if c.state is ConcernState.OPEN and c.concern_id not in just
        ),
        outcome=entry.outcome,
        end_reason=entry.end_reason,
        ended_on=entry.ended_on,
    )


def concern_links(base_url: str, entry: CircleEntry, concern: ConcernEntry) -> ConcernLinks:
    url = f"{base_url}/v1/concerns/{concern.concern_id}"
    return ConcernLinks(
        self=url,
        acknowledgement=f"{url}/acknowledgement",
        referral=f"{base_url}/v1/referrals/{entry.referral_id}",
    )


def concern_view(
    entry: CircleEntry,
    concern: ConcernEntry,
    base_url: str,
    acknowledged_at: datetime | None = None,
    *,
    with_summary: bool = False,
) -> ConcernView:
    """One raised concern; ``acknowledged_at``: when this API acknowledged it, if the facts have not said so
    yet (the facts' time wins once they have)."""
    assert concern.level is not None and concern.raised_at is not None, "a concern not raised yet"
    at = concern.acknowledged_at or acknowledged_at
    fields: dict[str, object] = {
        "concern_id": concern.concern_id,
        "referral_id": entry.referral_id,
        "circle_id": entry.circle_id,
        "level": concern.level,
        "raised_at": concern.raised_at,
        "state": ConcernState.OPEN if at is None else ConcernState.ACKNOWLEDGED,
        "acknowledged_at": at,
        "escalated_at": concern.escalated_at,
        "links": concern_links(base_url, entry, concern),
    }
    if with_summary:
        return ConcernDetail.model_validate({**fields, "summary": concern.summary})
    return ConcernView.model_validate(fields)
