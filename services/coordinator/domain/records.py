"""The scheme's records (MAPPA panels, 1-1 mentoring sessions, audits of practice): the rules a record must
meet before it is written, as plain functions over the record and today's date."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime

from pydantic import ValidationError

from schemas.events.coordinator import (
    AuditRecorded,
    MappaPanelRecorded,
    MentoringSessionRecorded,
    SchemeRecord,
)
from services.referral_progress.workdays import scheme_today


class RecordRefused(ValueError):
    """A record that breaks a rule; its message is one line for the user."""


def mappa_panel(
    *, referral_id: uuid.UUID, level: int, held_on: date, attended: bool, recorded_by: str, now: datetime
) -> MappaPanelRecorded:
    if level not in (2, 3):
        raise RecordRefused(f"a MAPPA panel is level 2 or 3, not {level}")
    if attended and held_on > scheme_today(now):
        raise RecordRefused(f"a panel on {held_on} is in the future: it cannot have been attended yet")
    return MappaPanelRecorded(
        panel_id=uuid.uuid4(),
        referral_id=referral_id,
        level=2 if level == 2 else 3,
        held_on=held_on,
        attended=attended,
        recorded_by=recorded_by,
        recorded_at=now,
    )


def mentoring_session(
    *, referral_id: uuid.UUID, held_on: date, minutes: int, recorded_by: str, now: datetime
) -> MentoringSessionRecorded:
    if held_on > scheme_today(now):
        raise RecordRefused(f"a session on {held_on} is in the future: record it once it has been held")
    if not 1 <= minutes <= 24 * 60:
        raise RecordRefused(f"a session lasts 1 to 1440 minutes, not {minutes}")
    return MentoringSessionRecorded(
        session_id=uuid.uuid4(),
        referral_id=referral_id,
        held_on=held_on,
        minutes=minutes,
        recorded_by=recorded_by,
        recorded_at=now,
    )


def audit(
    *, held_on: date, area: str, result: str, actions: int | None, recorded_by: str, now: datetime
) -> AuditRecorded:
    if held_on > scheme_today(now):
        raise RecordRefused(f"an audit on {held_on} is in the future: record it once it has been held")
    if result not in ("met", "actions"):
        raise RecordRefused(f"an audit's result is met or actions, not {result}")
    count = actions if actions is not None else 0
    if result == "actions" and actions is None:
        raise RecordRefused("an audit with result 'actions' needs --actions N (at least 1)")
    try:
        return AuditRecorded(
            audit_id=uuid.uuid4(),
            held_on=held_on,
            area=area,
            result="met" if result == "met" else "actions",
            actions=count,
            recorded_by=recorded_by,
            recorded_at=now,
        )
    except ValidationError as invalid:
        first = invalid.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "audit"
        raise RecordRefused(f"{where}: {first['msg']}".replace("Value error, ", "")) from None


FORMS = {"mappa-panel": "mappa_panel", "mentoring-session": "mentoring_session", "audit": "audit"}
"""The coordinator page's record forms (``/records/<form>``) and the kind of record each makes."""


def from_form(kind: str, form: Mapping[str, str], recorded_by: str, now: datetime) -> SchemeRecord:
    """A record of ``kind`` from the page's form fields as typed (absent ones empty): ``ValueError`` for a
    field that does not parse, ``RecordRefused`` (its message one line for the user) for a broken rule."""
    if kind == "mappa_panel":
        return mappa_panel(
            referral_id=uuid.UUID(form.get("referral", "").strip()),
            level=int(form.get("level", "")),
            held_on=date.fromisoformat(form.get("held_on", "")),
            attended=_yes_or_no(form.get("attended", "")),
            recorded_by=recorded_by,
            now=now,
        )
    if kind == "mentoring_session":
        return mentoring_session(
            referral_id=uuid.UUID(form.get("referral", "").strip()),
            held_on=date.fromisoformat(form.get("held_on", "")),
            minutes=int(form.get("minutes", "")),
            recorded_by=recorded_by,
            now=now,
        )
    if kind == "audit":
        actions = form.get("actions", "")
        return audit(
            held_on=date.fromisoformat(form.get("held_on", "")),
            area=form.get("area", "").strip(),
            result=form.get("result", ""),
            actions=int(actions) if actions.strip() else None,
            recorded_by=recorded_by,
            now=now,
        )
    raise ValueError(f"no record form of kind {kind}")


def _yes_or_no(answer: str) -> bool:
    if answer not in ("yes", "no"):
        raise ValueError("choose whether the panel was attended")
    return answer == "yes"


def parse_record(raw: bytes) -> SchemeRecord:
    """A record of the records topic back (its value alone: the id field says which kind it is)."""
    data = json.loads(raw)
    if "panel_id" in data:
        return MappaPanelRecorded.model_validate(data)
    if "session_id" in data:
        return MentoringSessionRecorded.model_validate(data)
    return AuditRecorded.model_validate(data)


def record_view(record: SchemeRecord) -> dict[str, object]:
    """The record as `--json` prints it and the page lists it: its kind and its fields."""
    kind = {
        MappaPanelRecorded: "mappa_panel",
        MentoringSessionRecorded: "mentoring_session",
        AuditRecorded: "audit",
    }[type(record)]
    return {"kind": kind, **record.model_dump(mode="json")}
