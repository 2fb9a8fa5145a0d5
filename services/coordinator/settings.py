"""Settings of the coordinator service (``CIRCLES_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.accounts.throttle import ThrottleLimits
from services.coordinator.domain.targets import DEFAULT_TARGETS
from services.matching.domain.policy import DEFAULT_POLICY
from services.referral_progress.settings import ServiceLevelSettings
from services.runtime.settings import RuntimeSettings


class CoordinatorSettings(RuntimeSettings, ServiceLevelSettings):
    web_host: str = "127.0.0.1"
    web_port: int = 8082
    matching_api_url: str = "http://127.0.0.1:8081"
    coordinator_api_token: str = Field(default="", description="Token for the matching API")
    session_secret: str = Field(
        default="", description="Signs session cookies; set it, or sessions die on restart"
    )
    secure_cookies: bool = Field(default=False, description="Send cookies over HTTPS only (behind TLS)")
    session_hours: float = Field(default=8.0, gt=0, le=24, description="How long a session lasts at most")
    sign_in_failures_per_account: int = Field(
        default=5, gt=0, description="Failed sign-ins for one account within the window before 429"
    )
    sign_in_failures_per_client: int = Field(
        default=20, gt=0, description="Failed sign-ins from one client address within the window before 429"
    )
    sign_in_window_s: float = Field(default=900.0, gt=0, description="The window of failed sign-ins counted")
    operations_poll_s: float = Field(default=5.0, gt=0, description="How often the operations page samples")
    matching_policy: Path = Field(default=DEFAULT_POLICY, description="The yearly target comes from it")
    scheme_targets: Path = Field(
        default=DEFAULT_TARGETS, description="The scheme's agreed targets, contract value and split"
    )

    def sign_in_limits(self) -> ThrottleLimits:
        return ThrottleLimits(
            per_account=self.sign_in_failures_per_account,
            per_client=self.sign_in_failures_per_client,
            window_s=self.sign_in_window_s,
        )
