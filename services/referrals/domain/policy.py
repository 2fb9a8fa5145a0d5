"""The eligibility policy's parameters, from a versioned configuration file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field

from schemas.common import Contract, LocalAuthority, RiskLevel

DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "policy" / "eligibility.yaml"


class EligibilityPolicy(Contract):
    version: str = Field(min_length=1)
    minimum_age: int = Field(ge=0, le=120)
    areas: frozenset[LocalAuthority]
    accepted_risk_levels: frozenset[RiskLevel]
    pre_release_window_months: int = Field(ge=0, le=60)
    in_scope_mappa_categories: frozenset[int]
    max_release_years: int = Field(
        default=15, ge=1, le=100, description="A release date further ahead is taken for a mistake"
    )
    max_age: int = Field(
        default=110, ge=18, le=150, description="An older date of birth is taken for a mistake"
    )


def load_policy(path: Path = DEFAULT_POLICY) -> EligibilityPolicy:
    return EligibilityPolicy.model_validate(yaml.safe_load(path.read_text()))
