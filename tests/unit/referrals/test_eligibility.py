"""Every eligibility rule, alone and in combination, against the versioned default policy."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from schemas.common import Outcome
from schemas.partner_api import ReferralSubmission
from services.referrals.domain.dates import add_months, age_on
from services.referrals.domain.eligibility import assess
from services.referrals.domain.policy import DEFAULT_POLICY, EligibilityPolicy, load_policy
from tests.samples import submission
from tests.strategies import submission_bodies

POLICY = load_policy()
TODAY = date(2026, 11, 24)

IN_SCOPE_OUT = {
    "offence__sexual_offence": False,
    "offence__registered_sex_offender": False,
    "offence__mappa_category": 2,
}
UNDER_18 = {"core_member__date_of_birth": "2009-01-01"}
OUTSIDE = {"core_member__local_authority": "outside-humberside"}
NO_CONSENT = {"consent__given": False}
LOW_RISK = {"risk__level": "low"}
NO_DATE = {"custody__expected_release_date": None}
FAR_RELEASE = {"custody__expected_release_date": "2028-01-15"}


def case(*overrides: dict[str, Any]) -> ReferralSubmission:
    merged: dict[str, Any] = {}
    for override in overrides:
        merged.update(override)
    return submission(**merged)


@pytest.mark.parametrize(
    ("overrides", "outcome", "codes"),
    [
        ((), Outcome.ELIGIBLE, []),
        (({"custody__in_custody": False, "custody__expected_release_date": None},), Outcome.ELIGIBLE, []),
        ((IN_SCOPE_OUT,), Outcome.INELIGIBLE, ["not_in_scope"]),
        (({**IN_SCOPE_OUT, "offence__mappa_category": 1},), Outcome.ELIGIBLE, []),
        (
            ({**IN_SCOPE_OUT, "offence__sexual_offence": True, "offence__mappa_category": 3},),
            Outcome.ELIGIBLE,
            [],
        ),
        (
            ({**IN_SCOPE_OUT, "offence__registered_sex_offender": True, "offence__mappa_category": None},),
            Outcome.ELIGIBLE,
            [],
        ),
        ((UNDER_18,), Outcome.INELIGIBLE, ["under_18"]),
        (({"core_member__date_of_birth": "2008-11-24"},), Outcome.ELIGIBLE, []),  # 18 today
        (({"core_member__date_of_birth": "2008-11-25"},), Outcome.INELIGIBLE, ["under_18"]),  # 18 tomorrow
        ((OUTSIDE,), Outcome.INELIGIBLE, ["outside_area"]),
        (({"core_member__local_authority": "east-riding"},), Outcome.ELIGIBLE, []),
        (({"core_member__local_authority": "north-lincolnshire"},), Outcome.ELIGIBLE, []),
        (({"core_member__local_authority": "north-east-lincolnshire"},), Outcome.ELIGIBLE, []),
        ((NO_CONSENT,), Outcome.INELIGIBLE, ["no_consent"]),
        ((LOW_RISK,), Outcome.INELIGIBLE, ["risk_too_low"]),
        (({"risk__level": "medium"},), Outcome.ELIGIBLE, []),
        (({"risk__level": "very-high"},), Outcome.ELIGIBLE, []),
        ((NO_DATE,), Outcome.NEEDS_INFORMATION, ["release_date_missing"]),
        ((FAR_RELEASE,), Outcome.DEFERRED, ["release_outside_window"]),
        (({"custody__expected_release_date": "2027-05-24"},), Outcome.ELIGIBLE, []),  # exactly 6 months
        (({"custody__expected_release_date": "2027-05-25"},), Outcome.DEFERRED, ["release_outside_window"]),
        (({"custody__expected_release_date": "2020-01-01"},), Outcome.ELIGIBLE, []),
        ((LOW_RISK, NO_DATE), Outcome.INELIGIBLE, ["risk_too_low", "release_date_missing"]),
        ((OUTSIDE, FAR_RELEASE), Outcome.INELIGIBLE, ["outside_area", "release_outside_window"]),
        ((NO_DATE, NO_CONSENT), Outcome.INELIGIBLE, ["no_consent", "release_date_missing"]),
        (
            (IN_SCOPE_OUT, UNDER_18, OUTSIDE, NO_CONSENT, LOW_RISK, FAR_RELEASE),
            Outcome.INELIGIBLE,
            [
                "not_in_scope",
                "under_18",
                "outside_area",
                "no_consent",
                "risk_too_low",
                "release_outside_window",
            ],
        ),
        (
            (IN_SCOPE_OUT, UNDER_18, OUTSIDE, NO_CONSENT, LOW_RISK, NO_DATE),
            Outcome.INELIGIBLE,
            [
                "not_in_scope",
                "under_18",
                "outside_area",
                "no_consent",
                "risk_too_low",
                "release_date_missing",
            ],
        ),
    ],
)
def test_rules(overrides: tuple[dict[str, Any], ...], outcome: Outcome, codes: list[str]) -> None:
    result = assess(case(*overrides), POLICY, TODAY)
    assert result.outcome is outcome
    assert result.codes == codes
    assert result.policy_version == POLICY.version
    assert all(reason.message for reason in result.reasons)


def test_every_pair_of_hard_failures_lists_both() -> None:
    hard: list[dict[str, Any]] = [IN_SCOPE_OUT, UNDER_18, OUTSIDE, NO_CONSENT, LOW_RISK]
    for i, first in enumerate(hard):
        for second in hard[i + 1 :]:
            result = assess(case(first, second), POLICY, TODAY)
            assert result.outcome is Outcome.INELIGIBLE and len(result.codes) == 2


def test_deferred_says_when_it_is_assessed_again() -> None:
    result = assess(case(FAR_RELEASE), POLICY, TODAY)
    assert result.reassess_on == date(2027, 7, 15)
    assert assess(case(FAR_RELEASE), POLICY, date(2027, 7, 15)).outcome is Outcome.ELIGIBLE
    assert assess(case(FAR_RELEASE), POLICY, date(2027, 7, 14)).outcome is Outcome.DEFERRED


def test_the_policy_is_configuration(tmp_path: Path) -> None:
    strict = replace_policy(
        minimum_age=21, pre_release_window_months=3, accepted_risk_levels=["high", "very-high"]
    )
    overrides = {
        "risk__level": "medium",
        "core_member__date_of_birth": "2006-01-01",
        "custody__expected_release_date": "2027-04-01",
    }
    result = assess(case(overrides), strict, TODAY)
    assert result.codes == ["under_18", "risk_too_low", "release_outside_window"]
    assert result.policy_version == "test-strict"
    file = tmp_path / "policy.yaml"
    file.write_text(DEFAULT_POLICY.read_text().replace('"2026.1"', '"2027.1"'))
    assert load_policy(file).version == "2027.1"


def replace_policy(**changes: Any) -> EligibilityPolicy:
    return EligibilityPolicy.model_validate({**POLICY.model_dump(), "version": "test-strict", **changes})


def test_calendar_helpers() -> None:
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2027, 7, 15), -6) == date(2027, 1, 15)
    assert age_on(date(2000, 2, 29), date(2018, 2, 28)) == 17
    assert age_on(date(2000, 2, 29), date(2018, 3, 1)) == 18


@settings(max_examples=300, deadline=None)
@given(submission_bodies())
def test_any_valid_submission_gets_exactly_one_outcome_with_consistent_reasons(body: dict[str, Any]) -> None:
    result = assess(ReferralSubmission.model_validate(body), POLICY, TODAY)
    assert result.outcome in set(Outcome)
    codes = set(result.codes)
    assert (result.outcome is Outcome.ELIGIBLE) == (not codes)
    assert (result.reassess_on is not None) == (result.outcome is Outcome.DEFERRED)
    assert len(result.codes) == len(codes)
