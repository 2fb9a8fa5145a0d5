"""The report page's commissioner's return (figures, chart, CSV) and its record forms, with fakes."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

from fastapi.testclient import TestClient

from schemas.envelope import Event
from schemas.events.coordinator import MappaPanelRecorded, SchemeRecord
from tests.unit.coordinator.test_scheme_return import formed
from tests.unit.coordinator.test_web import Facts, coordinator_web, signed_in


def world() -> tuple[TestClient, list[SchemeRecord], Facts]:
    kept: list[SchemeRecord] = []
    facts = Facts()
    events: list[Event] = [formed(1, "2026-05-01"), formed(2, "2026-10-01")]

    async def record(made: SchemeRecord) -> None:
        kept.append(made)

    app = coordinator_web(
        facts=facts,
        scheme_events=lambda: [*events, *kept],
        record=record,
    )
    return TestClient(app, raise_server_exceptions=False), kept, facts


def test_the_report_shows_the_return_its_chart_and_table_and_the_csv() -> None:
    client, _, _ = world()
    signed_in(client)
    page = client.get("/report", params={"start": "2026-04-01", "end": "2026-11-30"}).text
    assert 'aria-labelledby="return-chart-title return-chart-desc"' in page
    assert "Circles operating: 2 of 5.35 (not on track)" in page  # 8 x 244 / 365
    assert "The return's figures (the chart's figures as a table)" in page
    assert "£50,668.99 (OPCC £25,841.18, Probation £24,827.81)" in page and "£25,334.50" in page
    assert 'href="/report/return.csv?start=2026-04-01&end=2026-11-30"' in page.replace("&amp;", "&")
    response = client.get("/report/return.csv", params={"start": "2026-04-01", "end": "2026-11-30"})
    assert response.headers["content-type"].startswith("text/csv")
    assert "circles-return-2026-04-01-2026-11-30.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["section", "figure", "value"] and ["circles", "operating", "2"] in rows
    assert (
        client.get("/report/return.csv", params={"start": "2026-12-01", "end": "2026-11-01"}).status_code
        == 422
    )


def test_the_forms_record_with_csrf_and_refuse_bad_input_in_one_line() -> None:
    client, kept, facts = world()
    csrf = signed_in(client)
    unknown = str(uuid.uuid4())
    referral = str(facts.referrals()[0].referral_id)
    panel = {"referral": referral, "level": "3", "held_on": "2026-11-20", "attended": "yes"}
    assert client.post("/records/mappa-panel", data=panel, follow_redirects=False).status_code == 403
    done = client.post("/records/mappa-panel", data={**panel, "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/report?recorded=mappa_panel#records"
    assert isinstance(kept[0], MappaPanelRecorded) and kept[0].level == 3 and kept[0].attended
    assert kept[0].recorded_by == "coordinator:coordinator" and kept[0].held_on == date(2026, 11, 20)
    future = client.post("/records/mappa-panel", data={**panel, "held_on": "2026-11-25", "csrf_token": csrf})
    assert "in the future: it cannot have been attended yet" in future.text and 'role="alert"' in future.text
    level = client.post("/records/mappa-panel", data={**panel, "level": "4", "csrf_token": csrf})
    assert "level 2 or 3" in level.text
    stranger = client.post("/records/mappa-panel", data={**panel, "referral": unknown, "csrf_token": csrf})
    assert f"no referral {unknown}" in stranger.text and len(kept) == 1
    client.post(
        "/records/mentoring-session",
        data={"referral": referral, "held_on": "2026-11-23", "minutes": "50", "csrf_token": csrf},
    )
    client.post(
        "/records/audit",
        data={
            "held_on": "2026-11-02",
            "area": "minutes",
            "result": "actions",
            "actions": "2",
            "csrf_token": csrf,
        },
    )
    assert len(kept) == 3
    page = client.get("/report", params={"start": "2026-11-01", "end": "2026-11-30"}).text
    assert "MAPPA panels attended: 1 of 1" in page and "1 (1 met, 0 with actions)" not in page
    assert "1 (0 met, 1 with actions)" in page and "1 (50 minutes)" in page
