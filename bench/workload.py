"""The synthetic load: inbound referral submissions from the demo agencies, and a volunteer pool.

Invented people only. Referrals are the demo's sample referral (eligible: high risk, consent, release
within the window) spread over the four local authorities, each with its own agency reference; volunteers
come from ``bench.match_time.synthetic_pool`` (about 83% matchable, the rest lapsed, untrained or
withdrawn), with dates relative to the day of the run.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaProducer

from bench.match_time import AREAS, DISTRICTS, POLICY, synthetic_pool
from schemas.envelope import Envelope, encode
from schemas.events.referrals import InboundSubmission
from schemas.events.volunteers import VolunteerRegistered
from schemas.topics import REFERRALS_INBOUND, VOLUNTEERS
from services.dev.seed import sample_referral
from services.matching.domain.pool import Volunteer
from services.referrals.demo import DEMO_AGENCIES
from services.referrals.domain.referral import referral_id_for

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]
"""key, value, headers"""


@dataclass(frozen=True)
class Submission:
    referral_id: str
    agency_id: str
    event: InboundSubmission

    def record(self, now: datetime | None = None) -> Record:
        """The Kafka record an agency system would produce (CloudEvents headers, ``ce_source`` names it)."""
        envelope = Envelope.for_event(
            self.event,
            source=f"/agencies/{self.agency_id}",
            correlation_id=f"bench-{self.referral_id}",
            time=now or datetime.now(UTC),
        )
        return encode(self.event, envelope)


def submissions(run: str, count: int, today: date, start: int = 0) -> list[Submission]:
    """``count`` eligible referrals with references ``BENCH-<run>-<n>``, agencies taken in turn."""
    made = []
    for n in range(start, start + count):
        agency = DEMO_AGENCIES[n % len(DEMO_AGENCIES)].agency_id
        area = AREAS[n % len(AREAS)]
        districts = DISTRICTS[area]
        reference = f"BENCH-{run}-{n:06d}"
        body = sample_referral(
            reference,
            today,
            core_member__local_authority=area.value,
            core_member__postcode_district=districts[n % len(districts)],
            exclusion_zones=[districts[(n + 1) % len(districts)]],
        )
        made.append(
            Submission(
                referral_id=str(referral_id_for(agency, reference)),
                agency_id=agency,
                event=InboundSubmission.model_validate(body),
            )
        )
    return made


def inbound_topic(prefix: str) -> str:
    return prefix + REFERRALS_INBOUND.name


async def seed_volunteers(producer: AIOKafkaProducer, prefix: str, size: int, today: date) -> int:
    """Publish ``size`` volunteer records (whole records, as the matching service publishes them after the
    coordinator's changes) to the volunteers topic; returns how many are matchable today."""
    rng = random.Random(11)
    topic = prefix + VOLUNTEERS.name
    futures = []
    matchable = 0
    for record in synthetic_pool(size, rng, today):
        event = VolunteerRegistered(volunteer=record)
        envelope = Envelope.for_event(
            event, source="/circles/matching", correlation_id="bench-pool", event_id=uuid.uuid4()
        )
        key, value, headers = encode(event, envelope)
        futures.append(await producer.send(topic, value, key=key, headers=headers))
        matchable += not Volunteer.of(record, POLICY).readiness_problems(today)
    for future in futures:
        await future
    return matchable
