"""The service levels as configuration (``CIRCLES_*`` variables), for every service that follows them."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.referral_progress.service_levels import ServiceLevels
from services.referral_progress.workdays import BankHolidays


class ServiceLevelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIRCLES_", extra="ignore")
    acknowledge_within_days: int = Field(default=1, description="Working days to acknowledge a referral")
    decide_within_days: int = Field(default=10, description="Working days to decide on a referral")
    bank_holidays: list[date] = Field(
        default_factory=list,
        description="Extra days off (JSON list of dates), on top of England and Wales bank holidays",
    )

    def service_levels(self) -> ServiceLevels:
        return ServiceLevels(
            acknowledge_within_days=self.acknowledge_within_days,
            decide_within_days=self.decide_within_days,
            holidays=BankHolidays(self.bank_holidays),
        )
