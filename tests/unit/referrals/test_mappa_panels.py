"""An agency sees, on its own referrals, the MAPPA panels the scheme was asked to attend (and attended)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from schemas.events.coordinator import AuditRecorded, MappaPanelRecorded
from services.referrals.api import create_api
from services.referrals.panels import MappaPanels, panel_of, panels_of
from services.referrals.readmodel import ReferralIndex
from services.runtime.clock import FixedClock
from tests.samples import submission_body
from tests.unit.referrals.test_api import NOW, Keys, Recorder, auth, worker_applies

AT = datetime(2026, 11, 1, tzinfo=UTC)


def panel(referral_id: uuid.UUID, day: date, attended: bool, level: int = 2) -> MappaPanelRecorded:
    return MappaPanelRecorded(
        panel_id=uuid.uuid4(),
        referral_id=referral_id,
        level=2 if level == 2 else 3,
        held_on=day,
        attended=attended,
        recorded_by="cli:coordinator",
        recorded_at=AT,
    )


def an_audit() -> AuditRecorded:
    """Another kind of record on the same topic: never a panel."""
    return AuditRecorded(
        audit_id=uuid.uuid4(),
        held_on=date(2026, 10, 1),
        area="minutes",
        result="met",
        actions=0,
        recorded_by="t",
        recorded_at=AT,
    )


def test_panels_of_a_referral_oldest_first_and_nothing_else() -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    audit = an_audit()
    raw = [
        r.model_dump_json().encode()
        for r in (panel(mine, date(2026, 10, 2), False, 3), panel(other, date(2026, 9, 1), True), audit)
    ]
    raw.append(panel(mine, date(2026, 9, 30), True).model_dump_json().encode())
    records = [panel_of(value) for value in raw]
    assert records[2] is None
    shown = panels_of(records, mine)
    assert [(p.held_on, p.level, p.attended) for p in shown] == [
        (date(2026, 9, 30), 2, True),
        (date(2026, 10, 2), 3, False),
    ]


def test_the_stored_panels_are_looked_up_by_referral_and_kept_on_disk(tmp_path: Path) -> None:
    """The partner API's copy of the records topic (issue 13: no whole-topic read at a start): a referral's
    panels come from the index by referral; other records are in no index; a replaced or deleted panel is
    not shown; a copy opened again from the same folder still has them (nothing is read from Kafka here)."""
    mine, other = uuid.uuid4(), uuid.uuid4()
    audit = an_audit()
    first, second, theirs = (
        panel(mine, date(2026, 10, 2), False, 3),
        panel(mine, date(2026, 9, 30), True),
        panel(other, date(2026, 9, 1), True),
    )
    panels = MappaPanels("127.0.0.1:1", directory=tmp_path / "records")
    for key, record in [
        (str(first.panel_id), first),
        (str(second.panel_id), second),
        (str(theirs.panel_id), theirs),
        (str(audit.audit_id), audit),
    ]:
        panels.view.write_ahead(key, record.model_dump_json().encode())
    assert [(p.held_on, p.attended) for p in panels.of(mine)] == [
        (date(2026, 9, 30), True),
        (date(2026, 10, 2), False),
    ]
    assert [p.panel_id for p in panels.of(other)] == [theirs.panel_id]
    moved = first.model_copy(update={"attended": True})
    panels.view.write_ahead(str(first.panel_id), moved.model_dump_json().encode())
    panels.view.write_ahead(str(second.panel_id), None)
    assert [(p.panel_id, p.attended) for p in panels.of(mine)] == [(first.panel_id, True)]
    panels.view.store.close()
    again = MappaPanels("127.0.0.1:1", directory=tmp_path / "records")
    assert [(p.panel_id, p.attended) for p in again.of(mine)] == [(first.panel_id, True)]
    assert again.of(uuid.uuid4()) == []
    again.view.store.close()


def test_get_referral_carries_its_panels_and_another_agency_sees_nothing() -> None:
    index, recorder = ReferralIndex(), Recorder()
    recorded: dict[uuid.UUID, list[MappaPanelRecorded | None]] = {}
    app = create_api(
        authenticator=Keys(),
        index=index,
        publisher=recorder,
        access_log=recorder,
        base_url="http://partners.test",
        clock=FixedClock(NOW),
        panels=lambda referral_id: panels_of(recorded.get(referral_id, []), referral_id),
    )
    client = TestClient(app, raise_server_exceptions=False)
    referral_id = client.post("/v1/referrals", json=submission_body(), headers=auth()).json()["referral_id"]
    worker_applies(index, recorder)
    assert client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()["mappa_panels"] == []
    recorded[uuid.UUID(referral_id)] = [panel(uuid.UUID(referral_id), date(2026, 11, 20), True, 3)]
    body = client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert [(p["level"], p["held_on"], p["attended"]) for p in body["mappa_panels"]] == [
        (3, "2026-11-20", True)
    ]
    assert set(body["mappa_panels"][0]) == {"panel_id", "level", "held_on", "attended"}
    assert client.get(f"/v1/referrals/{referral_id}", headers=auth("key-police")).status_code == 404
