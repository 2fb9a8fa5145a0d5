"""Reading the history the commissioner's return and the compliance pack are computed from, for the CLI:
the coordinator's archive of public events, the scheme's records, and the volunteer records and proposals
as the matching service keeps them (opened with the volunteers' data keys, as ``circles volunteer list``)."""

from __future__ import annotations

from datetime import date

from schemas.envelope import Event
from schemas.topics import COORDINATOR_HISTORY
from services.coordinator.domain.history import ArchivedEvent, unarchived
from services.coordinator.domain.scheme_return import SchemeHistory
from services.coordinator.records import read_records
from services.coordinator.settings import CoordinatorSettings
from services.matching.domain.policy import load_policy
from services.matching.views import read_state
from services.protection.sealer import build_sealer
from services.runtime.kafka import read_compacted


async def read_history_events(bootstrap_servers: str, prefix: str) -> list[Event]:
    archive = await read_compacted(
        bootstrap_servers, prefix + COORDINATOR_HISTORY.name, ArchivedEvent.model_validate_json
    )
    events = unarchived(list(archive.values()))
    return [*events, *await read_records(bootstrap_servers, prefix)]


async def load_history(settings: CoordinatorSettings, today: date) -> SchemeHistory:
    servers, prefix = settings.bootstrap_servers(), settings.topic_prefix
    events = await read_history_events(servers, prefix)
    sealer = build_sealer(settings, ["volunteer", "decision"], client_id="circles-cli-keys")
    await sealer.start()
    try:
        state = await read_state(servers, load_policy(settings.matching_policy), sealer, prefix)
    finally:
        await sealer.stop()
    return SchemeHistory(events=events, volunteers=state.volunteers(today), proposals=state.proposals())
