"""Erasure and retention gaps (issue 14, finding 6): dates have sanity bounds (no release date defers for
ever), open referrals are retained out too, and ReferralErased names a role, never a person."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from schemas.common import Outcome, ReferralStatus
from schemas.events.referrals import EraseReferral, ReferralErased
from services.referrals.domain.eligibility import assess
from services.referrals.domain.referral import erase, submit
from services.referrals.domain.retention import RetentionPolicy, due_for_erasure, last_active_on
from tests.samples import submission
from tests.unit.referrals.test_eligibility import TODAY
from tests.unit.referrals.test_referral import NOW, POLICY, RID, command


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"custody__expected_release_date": "9999-12-31"}, "the expected release date"),
        ({"custody__expected_release_date": "2042-01-01"}, "the expected release date"),  # over 15 years
        ({"core_member__date_of_birth": "2027-01-01"}, "the date of birth"),  # not born yet
        ({"core_member__date_of_birth": "1900-01-01"}, "the date of birth"),  # 126 years old
        ({"consent__date": "2027-06-01"}, "the consent date"),
    ],
)
def test_an_implausible_date_asks_for_information_and_defers_nothing(
    overrides: dict[str, str], named: str
) -> None:
    result = assess(submission(**overrides), POLICY, TODAY)
    assert result.outcome is Outcome.NEEDS_INFORMATION and result.codes == ["implausible_date"]
    assert result.reassess_on is None and named in result.reasons[0].message


def test_a_release_within_the_bound_is_still_deferred() -> None:
    result = assess(submission(custody__expected_release_date="2040-01-01"), POLICY, TODAY)
    assert result.outcome is Outcome.DEFERRED and result.reassess_on == date(2039, 7, 1)


def test_open_referrals_are_retained_out_too() -> None:
    policy = RetentionPolicy(needs_information_days=180, open_days=730)
    waiting = submit(
        None, command(submission(custody__expected_release_date=None)), uuid.uuid4(), POLICY, NOW, "u"
    )
    assert waiting.entry and waiting.entry.record
    record = waiting.entry.record
    assert record.status is ReferralStatus.NEEDS_INFORMATION
    assert not due_for_erasure(record, NOW.date() + timedelta(days=179), policy)
    assert due_for_erasure(record, NOW.date() + timedelta(days=180), policy)

    deferred = submit(
        None, command(submission(custody__expected_release_date="2030-01-15")), uuid.uuid4(), POLICY, NOW, "u"
    )
    assert deferred.entry and deferred.entry.record
    later = deferred.entry.record
    assert later.status is ReferralStatus.DEFERRED and last_active_on(later) == date(2030, 1, 15)
    assert not due_for_erasure(later, date(2031, 1, 15), policy)  # waiting for its release: in use
    assert due_for_erasure(later, date(2032, 1, 15), policy)  # two years past it, untouched
    assert not due_for_erasure(later, date(2032, 1, 15), RetentionPolicy())  # open_days unset: never


def test_referral_erased_names_a_role_not_the_person() -> None:
    entry = submit(None, command(), uuid.uuid4(), POLICY, NOW, "u").entry
    for reason, role in (("request", "data-protection"), ("retention", "retention-policy")):
        asked = EraseReferral(
            referral_id=RID, reason=reason, requested_by="cli:jo.bloggs", requested_at=NOW, note=None
        )
        change = erase(entry, asked, uuid.uuid4(), NOW)
        (erased,) = [e for _, e in change.events if isinstance(e, ReferralErased)]
        assert erased.requested_by == role and "jo" not in erased.model_dump_json()


def test_an_inbound_record_nested_too_deep_to_decode_names_no_referral() -> None:
    """The fuzz test's deeply nested body: its dead letter gets a key of its own; no crash."""
    from types import SimpleNamespace

    from services.referrals.agents import inbound_subject

    record = SimpleNamespace(
        headers=[("ce_source", b"/agencies/probation-hull")], value=b"[" * 100_000, key=b""
    )
    assert inbound_subject(record) is None
