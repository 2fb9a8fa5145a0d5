"""Writing and reading the scheme's records (``circles.coordinator.records.v1``), for the CLI, the page and
the partner API."""

from __future__ import annotations

from schemas.events.coordinator import SchemeRecord
from schemas.topics import COORDINATOR_RECORDS
from services.coordinator.domain.records import parse_record
from services.runtime.kafka import CompactedView, Publisher, read_compacted


async def publish_record(bootstrap_servers: str, prefix: str, record: SchemeRecord, source: str) -> None:
    async with Publisher(bootstrap_servers, source, prefix=prefix) as publisher:
        await publisher.publish(record, publisher.envelope(record, str(record.record_id())))


async def read_records(bootstrap_servers: str, prefix: str) -> list[SchemeRecord]:
    records = await read_compacted(bootstrap_servers, prefix + COORDINATOR_RECORDS.name, parse_record)
    return sorted(records.values(), key=lambda r: (r.recorded_at, str(r.record_id())))


def records_view(bootstrap_servers: str, prefix: str, client_id: str) -> CompactedView[SchemeRecord]:
    """The records kept current (the page; the partner API's panels of a referral)."""
    return CompactedView(
        bootstrap_servers, prefix + COORDINATOR_RECORDS.name, parse_record, client_id=client_id
    )
