"""Value types shared by events and the partner API."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

PERSONAL = {"x-personal-data": True}
"""JSON Schema marker for a field holding personal data: it never leaves the owning service."""


class Contract(BaseModel):
    """Base of every contract model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LocalAuthority(StrEnum):
    HULL = "hull"
    EAST_RIDING = "east-riding"
    NORTH_LINCOLNSHIRE = "north-lincolnshire"
    NORTH_EAST_LINCOLNSHIRE = "north-east-lincolnshire"
    OUTSIDE_HUMBERSIDE = "outside-humberside"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very-high"


class AgeBand(StrEnum):
    UNDER_18 = "under-18"
    FROM_18_TO_24 = "18-24"
    FROM_25_TO_34 = "25-34"
    FROM_35_TO_44 = "35-44"
    FROM_45_TO_54 = "45-54"
    FROM_55_TO_64 = "55-64"
    FROM_65 = "65-plus"


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    NEEDS_INFORMATION = "needs_information"
    DEFERRED = "deferred"


class ReasonCode(StrEnum):
    NOT_IN_SCOPE = "not_in_scope"
    UNDER_18 = "under_18"
    OUTSIDE_AREA = "outside_area"
    NO_CONSENT = "no_consent"
    RISK_TOO_LOW = "risk_too_low"
    RELEASE_OUTSIDE_WINDOW = "release_outside_window"
    RELEASE_DATE_MISSING = "release_date_missing"
    IMPLAUSIBLE_DATE = "implausible_date"


class ReferralStatus(StrEnum):
    RECEIVED = "received"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    NEEDS_INFORMATION = "needs_information"
    DEFERRED = "deferred"
    PROPOSED = "proposed"
    AWAITING_VOLUNTEERS = "awaiting_volunteers"
    CIRCLE_FORMED = "circle_formed"
    CIRCLE_ENDED = "circle_ended"
    WITHDRAWN = "withdrawn"


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


POSTCODE_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")

PostcodeDistrict = Annotated[
    str,
    # The pattern before the upper-casing validator, so that the JSON Schema carries it (after it, pydantic
    # validates it in a second step that JSON Schema generation does not see). The documents say upper case;
    # the API also takes lower case and surrounding spaces, and stores the value upper-cased.
    StringConstraints(pattern=POSTCODE_DISTRICT.pattern),
    BeforeValidator(_upper),
    Field(description="Outward code of a UK postcode, e.g. HU5 or DN15", examples=["HU5"]),
]

WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode's White_Space characters, what contract models strip from both ends of a text, for use in
patterns. Written out, because regex dialects disagree on ``\\s``: JSON Schema's (ECMA-262) leaves out U+0085
and takes in U+FEFF, Python's takes in U+001C to U+001F; the validator's (Rust) is exactly this set."""
NOT_BLANK = f"[^{WHITE_SPACE}]"
"""Pattern of a required text: contract models strip surrounding white space before checking lengths, so a
text of white space only is empty; the documents say so with this pattern (``minLength`` alone would call it
valid)."""

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN),
    Field(description="lower-case letters, digits and hyphens"),
]
AgencyId = Slug
VolunteerId = Slug
CoordinatorId = Slug

Skill = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9:-]{0,40}$")]

AVAILABILITY_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AVAILABILITY_PARTS = ("am", "pm", "eve")
AvailabilitySlot = Annotated[
    str,
    StringConstraints(pattern=rf"^({'|'.join(AVAILABILITY_DAYS)})-({'|'.join(AVAILABILITY_PARTS)})$"),
    Field(description="day and part of day, e.g. mon-eve or sat-am"),
]


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("values must be distinct")
    return values


DistinctPostcodeDistricts = Annotated[
    list[PostcodeDistrict], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})
]


class Reason(Contract):
    """A machine-readable code with a plain-English explanation."""

    code: str
    message: str
