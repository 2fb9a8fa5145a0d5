"""Settings of the coordinator service (``CIRCLES_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

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
    session_hours: float = 8.0
    operations_poll_s: float = Field(default=5.0, gt=0, description="How often the operations page samples")
    matching_policy: Path = Field(default=DEFAULT_POLICY, description="The yearly target comes from it")
    scheme_targets: Path = Field(
        default=DEFAULT_TARGETS, description="The scheme's agreed targets, contract value and split"
    )
