"""The matching policy's parameters, from a versioned configuration file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, model_validator

from schemas.common import Contract, LocalAuthority

DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "policy" / "matching.yaml"


class Scores(Contract):
    same_local_authority: float
    neighbouring_local_authority: float
    experienced: float
    relevant_skill: float
    shared_availability: float
    both_genders: float
    one_experienced: float
    need_met: float


class MatchingPolicy(Contract):
    version: str = Field(min_length=1)
    dbs_valid_years: int = Field(ge=1)
    supervision_interval_weeks: int = Field(ge=1)
    default_max_circles: int = Field(ge=1)
    circle_active_months: int = Field(ge=1)
    circle_min: int = Field(ge=1)
    circle_max: int = Field(ge=1)
    circle_size: int = Field(ge=1)
    scores: Scores
    neighbours: dict[LocalAuthority, list[LocalAuthority]]
    yearly_target: int = Field(ge=0)
    target_year_starts_month: int = Field(ge=1, le=12)
    dbs_reminder_days: list[int]

    @model_validator(mode="after")
    def _size_within_bounds(self) -> MatchingPolicy:
        if not self.circle_min <= self.circle_size <= self.circle_max:
            raise ValueError("circle_size must lie between circle_min and circle_max")
        return self


def load_policy(path: Path = DEFAULT_POLICY) -> MatchingPolicy:
    return MatchingPolicy.model_validate(yaml.safe_load(path.read_text()))
