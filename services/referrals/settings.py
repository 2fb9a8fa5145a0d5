"""Settings of the referrals service (``CIRCLES_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.referrals.domain.policy import DEFAULT_POLICY
from services.referrals.domain.retention import RetentionPolicy
from services.runtime.settings import RuntimeSettings


class ReferralsSettings(RuntimeSettings):
    eligibility_policy: Path = Field(default=DEFAULT_POLICY, description="the versioned policy file")
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    public_url: str = Field(
        default="", description="Base URL partners reach the API at; default http://host:port"
    )
    max_body_bytes: int = 256 * 1024
    rate_limit_per_minute: int = Field(
        default=120, ge=0, description="Partner API requests per agency per minute, steady (0: no limit)"
    )
    rate_limit_burst: int = Field(default=60, ge=1, description="Requests an agency may send at once")
    reassess_interval_s: float = Field(default=3600.0, description="How often deferred referrals are checked")
    inbound_purge_interval_s: float = Field(
        default=60.0, gt=0, description="How often processed inbound submissions are deleted from Kafka"
    )
    retention_closed_days: int = Field(
        default=6 * 365, ge=1, description="Personal data kept after withdrawal or a circle formed"
    )
    retention_ineligible_days: int = Field(
        default=90, ge=1, description="Personal data kept after an ineligible decision"
    )

    retention_needs_information_days: int = Field(
        default=180, ge=1, description="Personal data kept after the last change while information is awaited"
    )
    retention_open_days: int = Field(
        default=2 * 365,
        ge=1,
        description="Personal data of any other open referral kept after its last change (or release date)",
    )

    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            closed_days=self.retention_closed_days,
            ineligible_days=self.retention_ineligible_days,
            needs_information_days=self.retention_needs_information_days,
            open_days=self.retention_open_days,
        )

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")
