"""Eligibility of a referral: every rule in one place, each failing rule with its reason code.

The outcome is ``ineligible`` when any hard rule fails (all failing rules are listed, release ones too);
otherwise ``needs_information`` when the release date is missing, ``deferred`` when release is beyond the
pre-release window (re-assessed on the day it enters it), else ``eligible``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from schemas.common import Outcome, Reason, ReasonCode
from schemas.partner_api import ReferralSubmission
from services.referrals.domain.dates import add_months, age_on
from services.referrals.domain.policy import EligibilityPolicy

HARD = frozenset(
    {
        ReasonCode.NOT_IN_SCOPE,
        ReasonCode.UNDER_18,
        ReasonCode.OUTSIDE_AREA,
        ReasonCode.NO_CONSENT,
        ReasonCode.RISK_TOO_LOW,
    }
)


@dataclass(frozen=True)
class Assessment:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    policy_version: str
    reassess_on: date | None = None

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]


def implausible_dates(submission: ReferralSubmission, policy: EligibilityPolicy, today: date) -> list[str]:
    """The dates that cannot be right (sanity bounds, so that no date defers or decides for ever): a birth
    in the future or over ``max_age`` years ago, consent given in the future, a release more than
    ``max_release_years`` ahead."""
    found = []
    born = submission.core_member.date_of_birth
    if born > today or age_on(born, today) > policy.max_age:
        found.append("the date of birth")
    if submission.consent.date is not None and submission.consent.date > today:
        found.append("the consent date")
    release = submission.custody.expected_release_date
    if release is not None and release > add_months(today, 12 * policy.max_release_years):
        found.append("the expected release date")
    return found


def assess(submission: ReferralSubmission, policy: EligibilityPolicy, today: date) -> Assessment:
    failed: list[Reason] = []

    def fail(code: ReasonCode, message: str) -> None:
        failed.append(Reason(code=code.value, message=message))

    offence = submission.offence
    in_scope = (
        offence.sexual_offence
        or offence.registered_sex_offender
        or offence.mappa_category in policy.in_scope_mappa_categories
    )
    if not in_scope:
        categories = ", ".join(str(c) for c in sorted(policy.in_scope_mappa_categories))
        fail(
            ReasonCode.NOT_IN_SCOPE,
            f"No sexual offence conviction or registration, and not MAPPA category {categories}.",
        )
    implausible = implausible_dates(submission, policy, today)
    if implausible:
        fail(
            ReasonCode.IMPLAUSIBLE_DATE,
            f"Please check {' and '.join(implausible)}: the date given cannot be right.",
        )
    elif age_on(submission.core_member.date_of_birth, today) < policy.minimum_age:
        fail(ReasonCode.UNDER_18, f"The core member is under {policy.minimum_age} on the day of assessment.")
    if submission.core_member.local_authority not in policy.areas:
        fail(
            ReasonCode.OUTSIDE_AREA,
            "Does not live in, or will not be released to, a Humberside local authority.",
        )
    if not submission.consent.given:
        fail(ReasonCode.NO_CONSENT, "Informed consent to take part has not been given.")
    if submission.risk.level not in policy.accepted_risk_levels:
        fail(
            ReasonCode.RISK_TOO_LOW,
            f"Risk level {submission.risk.level.value}: the scheme takes medium, high and very high risk; "
            "signpost to other services.",
        )

    reassess_on: date | None = None
    custody = submission.custody
    if custody.in_custody:
        release = custody.expected_release_date
        if release is None:
            fail(
                ReasonCode.RELEASE_DATE_MISSING, "In custody with no expected release date: please supply it."
            )
        elif "the expected release date" in implausible:
            pass  # asked for again above: no deferral to a date that cannot be right
        elif release > add_months(today, policy.pre_release_window_months):
            window = policy.pre_release_window_months
            reassess_on = add_months(release, -window)
            fail(
                ReasonCode.RELEASE_OUTSIDE_WINDOW,
                f"Release expected {release.isoformat()}, beyond the {window}-month window: "
                f"assessed again on {reassess_on.isoformat()}.",
            )

    codes = {ReasonCode(reason.code) for reason in failed}
    if codes & HARD:
        outcome, reassess_on = Outcome.INELIGIBLE, None
    elif codes & {ReasonCode.RELEASE_DATE_MISSING, ReasonCode.IMPLAUSIBLE_DATE}:
        outcome = Outcome.NEEDS_INFORMATION
    elif ReasonCode.RELEASE_OUTSIDE_WINDOW in codes:
        outcome = Outcome.DEFERRED
    else:
        outcome = Outcome.ELIGIBLE
    return Assessment(outcome, tuple(failed), policy.version, reassess_on)
