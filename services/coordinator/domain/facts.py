"""Messages that could not be delivered, as the coordinator page and the report count them."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime

from schemas.common import Contract
from schemas.events.notifications import NotificationDeadLettered


class DeadLetterFact(Contract):
    notification_id: uuid.UUID
    referral_id: uuid.UUID | None
    channel: str
    recipient_id: str
    reason: str
    at: AwareDatetime


def dead_letter(event: NotificationDeadLettered) -> DeadLetterFact:
    return DeadLetterFact(
        notification_id=event.notification_id,
        referral_id=event.referral_id,
        channel=event.channel.value,
        recipient_id=event.recipient_id,
        reason=event.reason,
        at=event.dead_lettered_at,
    )
