"""The delivery log's state machine: one entry per notification (event and recipient).

    (none) --request--> pending(1) --sent--> sent
                           |--failed--> failed(n) --retry due--> pending(n+1) ...
                           `--failed, attempts used up or permanent--> dead

The intent (``pending`` with the attempt number) is written before the message is sent. A request or
retry that finds its attempt still ``pending`` is in doubt: the worker stopped between recording the
intent and recording the result, and the sent-journal says whether the message went.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas.common import Contract
from schemas.envelope import Event
from schemas.events.notifications import (
    DeliveryRetryDue,
    NotificationContext,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationRequested,
    Recipient,
)
from services.notifications.domain.backoff import Backoff


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class DeliveryEntry(Contract):
    """The table value, keyed by notification id. Holds the request, so that retries can send it again."""

    notification_id: uuid.UUID
    referral_id: uuid.UUID | None
    template: str
    recipient: Recipient
    context: NotificationContext
    cause_event_id: uuid.UUID
    cause_event_type: str
    correlation_id: str
    status: DeliveryStatus
    attempts: int = Field(ge=1, description="Attempts started so far")
    last_error: str | None = Field(default=None, description="A code such as http_500 or smtp_550")
    next_attempt_at: AwareDatetime | None = None
    requested_at: AwareDatetime
    updated_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    dead_at: AwareDatetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in (DeliveryStatus.SENT, DeliveryStatus.DEAD)


def attempt_due(entry: DeliveryEntry | None, event: Event) -> int | None:
    """The attempt ``event`` asks for, or ``None`` when it is a duplicate or out of date."""
    if isinstance(event, NotificationRequested):
        if entry is None:
            return 1
        in_doubt = entry.status is DeliveryStatus.PENDING and entry.attempts == 1
        return 1 if in_doubt else None
    if isinstance(event, DeliveryRetryDue) and entry is not None:
        if entry.status is DeliveryStatus.FAILED and event.attempt == entry.attempts + 1:
            return event.attempt
        if entry.status is DeliveryStatus.PENDING and event.attempt == entry.attempts:
            return event.attempt
    return None


def intent(
    entry: DeliveryEntry | None,
    request: NotificationRequested | None,
    attempt: int,
    correlation_id: str,
    now: datetime,
) -> DeliveryEntry:
    """The entry recorded before attempt ``attempt`` is made."""
    if entry is not None:
        return entry.model_copy(
            update={
                "status": DeliveryStatus.PENDING,
                "attempts": attempt,
                "next_attempt_at": None,
                "updated_at": now,
            }
        )
    assert request is not None, "a first attempt needs its request"
    return DeliveryEntry(
        notification_id=request.notification_id,
        referral_id=request.context.referral_id,
        template=request.template,
        recipient=request.recipient,
        context=request.context,
        cause_event_id=request.cause_event_id,
        cause_event_type=request.cause_event_type,
        correlation_id=correlation_id,
        status=DeliveryStatus.PENDING,
        attempts=attempt,
        requested_at=request.requested_at,
        updated_at=now,
    )


def sent(entry: DeliveryEntry, now: datetime) -> DeliveryEntry:
    return entry.model_copy(
        update={"status": DeliveryStatus.SENT, "sent_at": now, "updated_at": now, "next_attempt_at": None}
    )


def failed(
    entry: DeliveryEntry, error: str, permanent: bool, backoff: Backoff, now: datetime
) -> DeliveryEntry:
    """Failed: try again after the back-off, or give up (dead) when attempts are used up or retrying
    cannot help."""
    if permanent or backoff.exhausted(entry.attempts):
        return entry.model_copy(
            update={"status": DeliveryStatus.DEAD, "last_error": error, "dead_at": now, "updated_at": now}
        )
    wait = timedelta(seconds=backoff.delay(entry.attempts, str(entry.notification_id)))
    return entry.model_copy(
        update={
            "status": DeliveryStatus.FAILED,
            "last_error": error,
            "next_attempt_at": now + wait,
            "updated_at": now,
        }
    )


def retry_due(entry: DeliveryEntry, now: datetime) -> DeliveryRetryDue | None:
    if entry.status is not DeliveryStatus.FAILED or entry.next_attempt_at is None:
        return None
    if entry.next_attempt_at > now:
        return None
    return DeliveryRetryDue(notification_id=entry.notification_id, attempt=entry.attempts + 1)


def outcome(entry: DeliveryEntry) -> NotificationDelivered | NotificationDeadLettered:
    """The event that says what became of a finished message."""
    common = {
        "notification_id": entry.notification_id,
        "referral_id": entry.referral_id,
        "channel": entry.recipient.channel,
        "recipient_id": entry.recipient.id,
        "attempts": entry.attempts,
    }
    if entry.status is DeliveryStatus.SENT:
        assert entry.sent_at is not None
        return NotificationDelivered(**common, delivered_at=entry.sent_at)
    assert entry.status is DeliveryStatus.DEAD and entry.dead_at is not None
    return NotificationDeadLettered(
        **common, reason=entry.last_error or "unknown", dead_lettered_at=entry.dead_at
    )
