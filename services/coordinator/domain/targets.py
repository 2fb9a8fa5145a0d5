"""The scheme's agreed targets, contract value and split, from a versioned configuration file (like the
eligibility and matching policies): a new year's contract is a change of that file and of its version."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from schemas.common import Contract

DEFAULT_TARGETS = Path(__file__).resolve().parents[1] / "policy" / "targets.yaml"
PENNY = Decimal("0.01")


class Split(Contract):
    opcc: Decimal = Field(ge=0, le=100, description="Percent paid by the Office of the PCC")
    probation: Decimal = Field(ge=0, le=100, description="Percent paid by the Probation Service")

    @model_validator(mode="after")
    def _whole(self) -> Split:
        if self.opcc + self.probation != 100:
            raise ValueError("the commissioners' shares must add up to 100 percent")
        return self


class SchemeTargets(Contract):
    version: str = Field(min_length=1)
    contract_year_starts_month: int = Field(ge=1, le=12)
    circles_operating_per_year: int = Field(ge=0)
    mappa_levels: list[Literal[2, 3]]
    contract_value: Decimal = Field(gt=0, decimal_places=2)
    split: Split
    dbs_valid_years: int = Field(ge=1)
    supervision_interval_weeks: int = Field(ge=1)
    minutes_due_hours: int = Field(ge=1)
    concern_acknowledgement_hours: int = Field(ge=1)
    review_every_months: int = Field(ge=1)

    def shares(self) -> tuple[Decimal, Decimal]:
        """OPCC's and Probation's amounts: OPCC's to the penny, Probation the rest (they add up)."""
        opcc = (self.contract_value * self.split.opcc / 100).quantize(PENNY, rounding=ROUND_HALF_UP)
        return opcc, self.contract_value - opcc

    def contract_year(self, day: date) -> tuple[date, date]:
        """First and last day of the contract year holding ``day``."""
        month = self.contract_year_starts_month
        first_year = day.year if day.month >= month else day.year - 1
        start = date(first_year, month, 1)
        following = date(first_year + 1, month, 1)
        return start, date.fromordinal(following.toordinal() - 1)


def load_targets(path: Path = DEFAULT_TARGETS) -> SchemeTargets:
    return SchemeTargets.model_validate(yaml.safe_load(path.read_text()))
