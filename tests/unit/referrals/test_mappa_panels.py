"""An agency sees, on its own referrals, the MAPPA panels the scheme was asked to attend (and attended)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient

from schemas.events.coordinator import AuditRecorded, MappaPanelRecorded
from services.referrals.api import create_api
from services.referrals.panels import panel_of, panels_of
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


def test_panels_of_a_referral_oldest_first_and_nothing_else() -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    audit = AuditRecorded(
        audit_id=uuid.uuid4(),
        held_on=date(2026, 10, 1),
        area="minutes",
        result="met",
        actions=0,
        recorded_by="t",
        recorded_at=AT,
    )
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
