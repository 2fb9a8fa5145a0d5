"""The agency registry: registering agencies and rotating keys (CLI), and authenticating them (API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.common import LocalAuthority
from schemas.events.agencies import AgencyKeyRotated, AgencyKind, AgencyRecord, AgencyRegistered
from schemas.topics import AGENCIES
from services.referrals.domain.keys import (
    key_id_of,
    new_api_key,
    new_kafka_signing_key,
    new_webhook_secret,
    verify,
)
from services.runtime.kafka import CompactedView, Publisher, read_compacted


def parse_agency(value: bytes) -> AgencyRecord:
    """Both agency event types carry the whole record under ``agency``."""
    return AgencyRegistered.model_validate_json(value).agency


class AgencyDirectory:
    """Who the agencies are, kept current from the compacted agencies topic; finds an agency by API key."""

    def __init__(self, bootstrap_servers: str, prefix: str = "") -> None:
        self._by_key_id: dict[str, str] = {}
        self.view: CompactedView[AgencyRecord] = CompactedView(
            bootstrap_servers,
            prefix + AGENCIES.name,
            parse_agency,
            on_change=self._index,
            client_id="circles-agencies",
        )

    def _index(self, agency_id: str, record: AgencyRecord | None) -> None:
        for key_id, owner in list(self._by_key_id.items()):
            if owner == agency_id:
                del self._by_key_id[key_id]
        if record is not None:
            self._by_key_id[record.api_key.key_id] = agency_id

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()

    def get(self, agency_id: str) -> AgencyRecord | None:
        return self.view.get(agency_id)

    def authenticate(self, api_key: str) -> AgencyRecord | None:
        key_id = key_id_of(api_key)
        agency_id = self._by_key_id.get(key_id) if key_id else None
        record = self.view.get(agency_id) if agency_id else None
        if record is None or not verify(api_key, record.api_key):
            return None
        return record


@dataclass(frozen=True)
class Credentials:
    agency_id: str
    api_key: str
    webhook_secret: str | None
    kafka_signing_key: str


class AgencyExists(Exception):
    pass


class AgencyNotFound(Exception):
    pass


async def register_agency(
    bootstrap_servers: str,
    agency_id: str,
    *,
    name: str,
    kind: AgencyKind = AgencyKind.OTHER,
    local_authorities: list[LocalAuthority] | None = None,
    contact_email: str | None = None,
    webhook_url: str | None = None,
    prefix: str = "",
) -> Credentials:
    existing = await read_compacted(bootstrap_servers, prefix + AGENCIES.name, parse_agency)
    if agency_id in existing:
        raise AgencyExists(
            f"agency {agency_id} is already registered (rotate its key with `circles agency rotate-key`)"
        )
    now = datetime.now(UTC)
    api_key, hashed = new_api_key(now)
    secret = new_webhook_secret() if webhook_url else None
    signing_key = new_kafka_signing_key()
    record = AgencyRecord(
        agency_id=agency_id,
        name=name,
        kind=kind,
        local_authorities=local_authorities or [],
        contact_email=contact_email,
        webhook_url=webhook_url,
        webhook_secret=secret,
        kafka_signing_key=signing_key,
        api_key=hashed,
        registered_at=now,
        updated_at=now,
    )
    async with Publisher(bootstrap_servers, "/circles/referrals/cli", prefix=prefix) as publisher:
        event = AgencyRegistered(agency=record)
        await publisher.publish(event, publisher.envelope(event, correlation_id=f"agency-{agency_id}"))
    return Credentials(agency_id, api_key, secret, signing_key)


async def rotate_key(bootstrap_servers: str, agency_id: str, *, prefix: str = "") -> Credentials:
    """A new API key and a new Kafka signing key; the old ones stop working once the services see it."""
    existing = await read_compacted(bootstrap_servers, prefix + AGENCIES.name, parse_agency)
    current = existing.get(agency_id)
    if current is None:
        raise AgencyNotFound(f"no agency {agency_id}")
    now = datetime.now(UTC)
    api_key, hashed = new_api_key(now)
    signing_key = new_kafka_signing_key()
    update = {"api_key": hashed, "kafka_signing_key": signing_key, "updated_at": now}
    event = AgencyKeyRotated(agency=current.model_copy(update=update))
    async with Publisher(bootstrap_servers, "/circles/referrals/cli", prefix=prefix) as publisher:
        await publisher.publish(event, publisher.envelope(event, correlation_id=f"agency-{agency_id}"))
    return Credentials(agency_id, api_key, None, signing_key)


async def list_agencies(bootstrap_servers: str, *, prefix: str = "") -> list[AgencyRecord]:
    existing = await read_compacted(bootstrap_servers, prefix + AGENCIES.name, parse_agency)
    return sorted(existing.values(), key=lambda record: record.agency_id)
