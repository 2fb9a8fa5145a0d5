"""Hypothesis strategies for synthetic submissions: every valid shape, and bodies broken in known places."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from schemas.common import Gender, LocalAuthority, RiskLevel

letters = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ '-", min_size=1, max_size=40
).filter(lambda s: s.strip() != "")
districts = st.from_regex(r"\A(HU|DN|YO)[1-9][0-9]?\Z")
optional_date = st.none() | st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def submission_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid body of POST /v1/referrals (synthetic values only)."""
    in_custody = draw(st.booleans())
    return {
        "agency_reference": draw(st.from_regex(r"\A[A-Z]{2,6}-20[0-9]{2}-[0-9]{4}\Z")),
        "referrer": {
            "name": draw(letters),
            "role": draw(letters),
            "email": draw(st.from_regex(r"\A[a-z]{1,10}\.[a-z]{1,10}@example\.org\Z")),
            "phone": draw(st.none() | st.from_regex(r"\A0[0-9]{4} [0-9]{6}\Z")),
        },
        "core_member": {
            "given_name": draw(letters),
            "family_name": draw(letters),
            "date_of_birth": draw(
                st.dates(min_value=date(1930, 1, 1), max_value=date(2015, 12, 31))
            ).isoformat(),
            "gender": draw(st.sampled_from([g.value for g in Gender])),
            "pnc_number": draw(st.none() | st.from_regex(r"\A(19|20)[0-9]{2}/[0-9]{7}[A-Z]\Z")),
            "local_authority": draw(st.sampled_from([la.value for la in LocalAuthority])),
            "postcode_district": draw(districts),
        },
        "offence": {
            "sexual_offence": draw(st.booleans()),
            "registered_sex_offender": draw(st.booleans()),
            "mappa_category": draw(st.none() | st.sampled_from([1, 2, 3])),
            "mappa_level": draw(st.none() | st.sampled_from([1, 2, 3])),
        },
        "risk": {
            "level": draw(st.sampled_from([r.value for r in RiskLevel])),
            "tool": draw(st.none() | st.just("OASys")),
        },
        "custody": {
            "in_custody": in_custody,
            "establishment": "HMP Hull" if in_custody else None,
            "expected_release_date": (d.isoformat() if (d := draw(optional_date)) else None),
        },
        "consent": {"given": draw(st.booleans()), "date": draw(st.none() | st.just("2026-11-01"))},
        "needs": {
            "learning_disability": draw(st.booleans()),
            "mental_health": draw(st.booleans()),
            "interpreter_language": draw(st.none() | st.sampled_from(["Polish", "Arabic", "Romanian"])),
        },
        "exclusion_zones": draw(st.lists(districts, max_size=4, unique=True)),
        "notes": draw(st.none() | st.text(max_size=200)),
    }


# Ways to break one field, each with the location pydantic will report.
BREAKERS: list[tuple[tuple[str, ...], Any]] = [
    (("agency_reference",), "no spaces allowed here"),
    (("referrer", "email"), "not-an-email"),
    (("core_member", "date_of_birth"), "02/03/1979"),
    (("core_member", "gender"), "unknown"),
    (("core_member", "pnc_number"), "12345"),
    (("core_member", "local_authority"), "york"),
    (("core_member", "postcode_district"), "HU5 3AB"),
    (("offence", "mappa_category"), 4),
    (("offence", "sexual_offence"), "perhaps"),
    (("risk", "level"), "extreme"),
    (("custody", "expected_release_date"), "soon"),
    (("consent", "given"), "yes please"),
    (("exclusion_zones",), "HU3"),
    (("notes",), "x" * 2001),
    (("unexpected_field",), 1),
    (("core_member", "nickname"), "Nick"),
]


@st.composite
def broken_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], set[tuple[str, ...]]]:
    """A valid body with one or more fields broken, and the locations that must be reported."""
    body = copy.deepcopy(draw(submission_bodies()))
    chosen = draw(st.lists(st.sampled_from(BREAKERS), min_size=1, max_size=6, unique_by=lambda b: b[0]))
    for path, value in chosen:
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return body, {path for path, _ in chosen}


def a_year_from(day: date) -> date:
    return day + timedelta(days=365)
