"""The scheme's records: the rules a record meets before it is written, and the CLI's one-line errors."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from schemas.events.coordinator import AuditRecorded, MappaPanelRecorded, MentoringSessionRecorded
from services.cli import main
from services.coordinator.domain import records
from services.coordinator.domain.records import RecordRefused, parse_record
from services.coordinator.domain.targets import load_targets

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
REFERRAL = uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")


def test_an_attended_panel_is_not_in_the_future() -> None:
    with pytest.raises(RecordRefused, match="in the future"):
        records.mappa_panel(
            referral_id=REFERRAL, level=2, held_on=date(2026, 6, 2), attended=True, recorded_by="t", now=NOW
        )
    planned = records.mappa_panel(
        referral_id=REFERRAL, level=3, held_on=date(2026, 6, 2), attended=False, recorded_by="t", now=NOW
    )
    assert planned.level == 3 and not planned.attended
    today = records.mappa_panel(
        referral_id=REFERRAL, level=2, held_on=date(2026, 6, 1), attended=True, recorded_by="t", now=NOW
    )
    assert today.attended


def test_a_panel_is_level_2_or_3() -> None:
    with pytest.raises(RecordRefused, match="level 2 or 3"):
        records.mappa_panel(
            referral_id=REFERRAL, level=1, held_on=date(2026, 5, 1), attended=True, recorded_by="t", now=NOW
        )


def test_an_audit_result_agrees_with_its_actions() -> None:
    with pytest.raises(RecordRefused, match="needs --actions"):
        records.audit(
            held_on=date(2026, 5, 1),
            area="supervision",
            result="actions",
            actions=None,
            recorded_by="t",
            now=NOW,
        )
    with pytest.raises(RecordRefused, match="leaves no actions"):
        records.audit(
            held_on=date(2026, 5, 1), area="supervision", result="met", actions=2, recorded_by="t", now=NOW
        )
    with pytest.raises(RecordRefused, match="area"):
        records.audit(
            held_on=date(2026, 5, 1),
            area="Mr Smith's file",
            result="met",
            actions=None,
            recorded_by="t",
            now=NOW,
        )
    done = records.audit(
        held_on=date(2026, 5, 1), area="minutes", result="actions", actions=3, recorded_by="t", now=NOW
    )
    assert parse_record(done.model_dump_json().encode()) == done


def test_sessions_round_trip_and_are_not_in_the_future() -> None:
    with pytest.raises(RecordRefused, match="future"):
        records.mentoring_session(
            referral_id=REFERRAL, held_on=date(2026, 7, 1), minutes=60, recorded_by="t", now=NOW
        )
    held = records.mentoring_session(
        referral_id=REFERRAL, held_on=date(2026, 5, 1), minutes=45, recorded_by="t", now=NOW
    )
    assert parse_record(held.model_dump_json().encode()) == held
    assert records.record_view(held)["kind"] == "mentoring_session"


def test_the_contract_values_are_settings() -> None:
    targets = load_targets()
    assert targets.circles_operating_per_year == 8
    assert targets.contract_value == Decimal("50668.99")
    assert targets.shares() == (Decimal("25841.18"), Decimal("24827.81"))
    assert targets.contract_year(date(2027, 2, 1)) == (date(2026, 4, 1), date(2027, 3, 31))


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (
            [
                "mappa",
                "panel",
                "--referral",
                str(REFERRAL),
                "--level",
                "4",
                "--date",
                "2026-01-01",
                "--attended",
                "yes",
            ],
            2,
            "'--level'",
        ),
        (
            [
                "mappa",
                "panel",
                "--referral",
                "R-1",
                "--level",
                "2",
                "--date",
                "2026-01-01",
                "--attended",
                "yes",
            ],
            2,
            "not a referral id",
        ),
        (
            [
                "mappa",
                "panel",
                "--referral",
                str(REFERRAL),
                "--level",
                "2",
                "--date",
                "2999-01-01",
                "--attended",
                "yes",
            ],
            1,
            "in the future",
        ),
        (
            ["mentoring", "session", "--referral", str(REFERRAL), "--date", "2026-01-01", "--minutes", "0"],
            2,
            "'--minutes'",
        ),
        (
            ["audit", "record", "--date", "2026-01-01", "--area", "minutes", "--result", "actions"],
            1,
            "needs --actions",
        ),
        (["audit", "record", "--date", "01/01/2026", "--area", "minutes", "--result", "met"], 2, "'--date'"),
    ],
)
def test_bad_input_gets_one_line_and_its_status(args: list[str], status: int, says: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == status, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0]


def test_the_page_forms_make_each_kind_of_record_from_the_fields_as_typed() -> None:
    panel = records.from_form(
        "mappa_panel",
        {"referral": f" {REFERRAL} ", "level": "3", "held_on": "2026-05-20", "attended": "no"},
        "coordinator:c",
        NOW,
    )
    assert isinstance(panel, MappaPanelRecorded)
    assert (panel.referral_id, panel.level, panel.attended, panel.recorded_by) == (
        REFERRAL,
        3,
        False,
        "coordinator:c",
    )
    session = records.from_form(
        "mentoring_session", {"referral": str(REFERRAL), "held_on": "2026-05-20", "minutes": "50"}, "t", NOW
    )
    assert isinstance(session, MentoringSessionRecorded) and session.minutes == 50
    met = records.from_form(
        "audit", {"held_on": "2026-05-20", "area": " minutes ", "result": "met"}, "t", NOW
    )
    assert isinstance(met, AuditRecorded) and met.area == "minutes" and met.actions == 0


@pytest.mark.parametrize(
    ("kind", "form"),
    [
        ("mappa_panel", {"referral": str(REFERRAL), "level": "3", "held_on": "2026-05-20", "attended": ""}),
        ("mappa_panel", {"referral": "not-a-uuid", "level": "3", "held_on": "2026-05-20", "attended": "yes"}),
        ("mentoring_session", {"referral": str(REFERRAL), "held_on": "20 May", "minutes": "50"}),
        ("audit", {"held_on": "2026-05-20", "area": "minutes", "result": "actions", "actions": "two"}),
        ("review", {"held_on": "2026-05-20"}),
    ],
)
def test_a_page_form_that_does_not_parse_is_a_value_error(kind: str, form: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        records.from_form(kind, form, "t", NOW)
