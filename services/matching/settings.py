"""Settings of the matching service (``CIRCLES_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.matching.domain.policy import DEFAULT_POLICY
from services.runtime.settings import RuntimeSettings


class MatchingSettings(RuntimeSettings):
    matching_policy: Path = Field(default=DEFAULT_POLICY, description="the versioned policy file")
    reminder_interval_s: float = Field(
        default=3600.0, description="How often volunteer reminders are checked"
    )
    matching_api_host: str = "127.0.0.1"
    matching_api_port: int = 8081
    coordinator_api_token: str = Field(
        default="", description="Bearer token for the matching API (the coordinator page signs in instead)"
    )
