"""The synthetic load: inbound referral submissions from the demo agencies, and a volunteer pool.

Invented people only. Referrals are the demo's sample referral (eligible: high risk, consent, release
within the window) spread over the four local authorities, each with its own agency reference; volunteers
come from ``bench.match_time.synthetic_pool`` (about 83% matchable, the rest lapsed, untrained or
withdrawn), with dates relative to the day of the run.

Records are encoded as their producers encode them on main (``services.protection.codec.encode_record``):
volunteer records with their personal fields sealed under each volunteer's data key, as the matching
service publishes them. An inbound submission is what an agency system produces: main's contract has no
data subject for it (agencies hold no data keys), so it goes in the clear, as in the services' own tests,
and the referrals worker seals it when it turns it into a command. Should the contract change, the same
call seals it (or refuses without a sealer). It is signed with the agency's Kafka signing key
(``services.referrals.domain.inbound_signature``), as the worker refuses unsigned submissions.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaProducer

from bench.match_time import AREAS, DISTRICTS, POLICY, synthetic_pool
from schemas.envelope import Envelope
from schemas.events.referrals import InboundSubmission
from schemas.events.volunteers import VolunteerRegistered
from schemas.topics import REFERRALS_INBOUND, VOLUNTEERS
from services.dev.seed import sample_referral
from services.matching.domain.pool import Volunteer
from services.protection.codec import encode_record
from services.protection.sealer import Sealer
from services.referrals.demo import DEMO_AGENCIES
from services.referrals.domain.inbound_signature import signed_headers
from services.referrals.domain.referral import referral_id_for

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]
"""key, value, headers"""


@dataclass(frozen=True)
class Submission:
    referral_id: str
    agency_id: str
    event: InboundSubmission

    async def record(
        self,
        sealer: Sealer | None = None,
        now: datetime | None = None,
        signing_keys: Mapping[str, str] | None = None,
    ) -> Record:
        """The Kafka record an agency system would produce (CloudEvents headers, ``ce_source`` names it),
        signed with its agency's key from ``signing_keys`` (unsigned without)."""
        envelope = Envelope.for_event(
            self.event,
            source=f"/agencies/{self.agency_id}",
            correlation_id=f"bench-{self.referral_id}",
            time=now or datetime.now(UTC),
        )
        key, value, headers = await encode_record(self.event, envelope, sealer)
        if signing_keys is not None:
            headers = signed_headers(signing_keys[self.agency_id], headers, value)
        return key, value, headers


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


async def seed_volunteers(
    producer: AIOKafkaProducer, sealer: Sealer, prefix: str, size: int, today: date, chunk: int = 500
) -> int:
    """Publish ``size`` volunteer records (whole records, as the matching service publishes them after the
    coordinator's changes, personal fields sealed with a data key per volunteer) to the volunteers topic;
    returns how many are matchable today. Data keys are made ``chunk`` at a time (each is acknowledged by
    the broker before anything sealed with it is sent)."""
    rng = random.Random(11)
    topic = prefix + VOLUNTEERS.name
    records = synthetic_pool(size, rng, today)
    matchable = sum(not Volunteer.of(record, POLICY).readiness_problems(today) for record in records)
    for start in range(0, len(records), chunk):
        events = [VolunteerRegistered(volunteer=record) for record in records[start : start + chunk]]
        encoded = await asyncio.gather(
            *(
                encode_record(
                    event,
                    Envelope.for_event(
                        event, source="/circles/matching", correlation_id="bench-pool", event_id=uuid.uuid4()
                    ),
                    sealer,
                )
                for event in events
            )
        )
        futures = [
            await producer.send(topic, value, key=key, headers=headers) for key, value, headers in encoded
        ]
        await asyncio.gather(*futures)
    return matchable
