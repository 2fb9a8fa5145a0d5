"""Events of the notifications service: what it was asked to send, and what became of it.

A notification's context holds references only (ids, statuses, reason codes, links), by construction.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from schemas.common import AgencyId, Contract, ReferralStatus, VolunteerId
from schemas.envelope import Event
from schemas.events.circles import CircleId, ConcernLevel


class ChannelKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Recipient(Contract):
    kind: Literal["agency", "coordinator"]
    id: str = Field(description="agency id, or 'coordinator'")
    channel: ChannelKind
    endpoint: str = Field(description="an organisational mailbox, or the agency's registered webhook URL")


class NotificationContext(Contract):
    """The only facts a message may carry: references and statuses, never a person's details."""

    referral_id: uuid.UUID | None = None
    agency_id: AgencyId | None = None
    agency_reference: str | None = None
    status: ReferralStatus | None = None
    reason_codes: list[str] = []
    proposal_id: uuid.UUID | None = None
    circle_id: uuid.UUID | CircleId | None = Field(
        default=None,
        description="A circle's id: circle-<referral id>, as the partner API and the circles service name it",
    )
    concern_id: uuid.UUID | None = None
    level: ConcernLevel | None = Field(default=None, description="A concern's level")
    volunteer_id: VolunteerId | None = None
    due_on: date | None = None
    days_left: int | None = None
    waiting_days: int | None = None
    figures: dict[str, int] = Field(default={}, description="counts for digests and reports")
    link: str | None = None
    failed_notification_id: uuid.UUID | None = Field(
        default=None, description="For a message about an undeliverable one: that message's id"
    )
    failed_template: str | None = None
    failed_channel: ChannelKind | None = None


class NotificationRequested(Event):
    event_type: ClassVar[str] = "circles.notification.requested.v1"
    notification_id: uuid.UUID = Field(description="Derived from the cause event id and the recipient")
    cause_event_id: uuid.UUID
    cause_event_type: str
    template: str
    recipient: Recipient
    context: NotificationContext
    requested_at: AwareDatetime

    def partition_key(self) -> str:
        return str(self.notification_id)


class DeliveryRetryDue(Event):
    """Internal: the back-off of a failed delivery has passed; try again."""

    event_type: ClassVar[str] = "circles.notification.retry-due.v1"
    notification_id: uuid.UUID
    attempt: int = Field(ge=2)

    def partition_key(self) -> str:
        return str(self.notification_id)


class _DeliveryOutcome(Event):
    notification_id: uuid.UUID
    referral_id: uuid.UUID | None
    channel: ChannelKind
    recipient_id: str
    attempts: int = Field(ge=1)

    def partition_key(self) -> str:
        return str(self.notification_id)


class NotificationDelivered(_DeliveryOutcome):
    event_type: ClassVar[str] = "circles.notification.delivered.v1"
    delivered_at: AwareDatetime


class NotificationDeadLettered(_DeliveryOutcome):
    event_type: ClassVar[str] = "circles.notification.dead-lettered.v1"
    reason: str = Field(description="Why delivery was given up, e.g. the last SMTP or HTTP error")
    dead_lettered_at: AwareDatetime
