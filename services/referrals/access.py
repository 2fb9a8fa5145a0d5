"""The access log: who read or changed which referrals, when, and what they were answered.

Special-category and criminal-offence data call for accountability (UK GDPR Art. 5(2) and 32): every
partner API request about referrals and every erasure is a ``ReferralAccessed`` record on
``circles.referrals.access.v1``; ``circles audit referral ID`` reads them back.

Durability: each record is published and acknowledged by the broker (``acks=all``, idempotent producer)
before the answer goes out, or before the erasure is requested. When the broker cannot take it, the
request is answered 503 and no referral data leaves: an access that cannot be recorded does not happen.
Buffering and answering first would save a round trip, but a buffer in memory loses its records when the
process dies, and one on disk is a second log to run. The ack costs one round trip (milliseconds; the
producer batches concurrent requests' records together), and the rule stays simple: no answer without
its record. (A record may exist for a request whose answer never arrived: the client went away, or the
acknowledgement came after the 503. The log errs on the side of recording.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.envelope import Envelope, decode_as
from schemas.events.referrals import AccessAction, ReferralAccessed
from schemas.topics import REFERRAL_ACCESS
from services.ops.broker import Broker
from services.runtime.kafka import Publisher

RECORD_WITHIN_S = 10.0
"""How long a request waits for its access record to be acknowledged before it is refused (503)."""


@dataclass(frozen=True)
class Access:
    """What a request touched: the handler says, the partner gate records it with the answer's status."""

    action: AccessAction
    referral_ids: Sequence[uuid.UUID]


class AccessLog:
    """Writes access records through a publisher (the API's, or the CLI's) and waits for the broker."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def record(
        self,
        actor: str,
        access: Access,
        correlation_id: str,
        accessed_at: datetime,
        status: int | None = None,
    ) -> None:
        """One record per ``MAX_IDS`` referrals (one for none); TimeoutError or KafkaError if not taken."""
        ids = list(access.referral_ids)
        chunks = [ids[i : i + ReferralAccessed.MAX_IDS] for i in range(0, len(ids), ReferralAccessed.MAX_IDS)]
        async with asyncio.timeout(RECORD_WITHIN_S):
            sent = []
            for chunk in chunks or [[]]:
                event = ReferralAccessed(
                    actor=actor,
                    action=access.action,
                    referral_ids=chunk,
                    status=status,
                    accessed_at=accessed_at,
                )
                # the envelope keeps the real time of writing: ``accessed_at`` is the clock's, and a
                # rehearsal's clock stopped in a file dates accesses alike; the real time keeps their order
                envelope = self.publisher.envelope(event, correlation_id, time=datetime.now(UTC))
                sent.append(await self.publisher.send(event, envelope))
            await asyncio.gather(*sent)


async def accesses_of(
    bootstrap_servers: str, referral_id: uuid.UUID, prefix: str = ""
) -> list[tuple[Envelope, ReferralAccessed]]:
    """Every recorded access to one referral, oldest first (the whole log is read: a rare, manual query)."""
    topic = prefix + REFERRAL_ACCESS.name
    found = []
    async with Broker(bootstrap_servers, client_id="circles-audit") as broker:
        partitions = (await broker.partitions([topic]))[topic]
        beginnings, ends = await broker.offsets(partitions)
        async for record in broker.read({tp: (beginnings[tp], ends[tp]) for tp in partitions}, seconds=120):
            envelope, event = decode_as(ReferralAccessed, record.value, record.headers)
            if referral_id in event.referral_ids:
                found.append((envelope, event))
    return sorted(found, key=lambda pair: (pair[1].accessed_at, pair[0].time))
