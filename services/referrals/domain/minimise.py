"""What other services may know about a referral: the minimised profile, never a name or a date of birth."""

from __future__ import annotations

from datetime import date

from schemas.common import AgeBand
from schemas.events.referrals import NeedsProfile, ReferralProfile
from schemas.partner_api import ReferralSubmission
from services.referrals.domain.dates import age_on

BANDS = (
    (65, AgeBand.FROM_65),
    (55, AgeBand.FROM_55_TO_64),
    (45, AgeBand.FROM_45_TO_54),
    (35, AgeBand.FROM_35_TO_44),
    (25, AgeBand.FROM_25_TO_34),
    (18, AgeBand.FROM_18_TO_24),
)


def age_band(born: date, today: date) -> AgeBand:
    age = age_on(born, today)
    return next((band for floor, band in BANDS if age >= floor), AgeBand.UNDER_18)


def profile_of(submission: ReferralSubmission, today: date) -> ReferralProfile:
    member = submission.core_member
    return ReferralProfile(
        local_authority=member.local_authority,
        postcode_district=member.postcode_district,
        gender=member.gender,
        age_band=age_band(member.date_of_birth, today),
        risk_level=submission.risk.level,
        mappa_category=submission.offence.mappa_category,
        mappa_level=submission.offence.mappa_level,
        in_custody=submission.custody.in_custody,
        expected_release_date=submission.custody.expected_release_date
        if submission.custody.in_custody
        else None,
        needs=NeedsProfile(
            learning_disability=submission.needs.learning_disability,
            mental_health=submission.needs.mental_health,
            interpreter_language=submission.needs.interpreter_language,
        ),
        exclusion_zones=list(submission.exclusion_zones),
    )
