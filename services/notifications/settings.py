"""Settings of the notifications service (``CIRCLES_*`` environment variables)."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from services.notifications.domain.backoff import Backoff
from services.notifications.domain.digest import DigestSchedule
from services.notifications.domain.routing import RoutingConfig
from services.referral_progress.settings import ServiceLevelSettings
from services.runtime.settings import RuntimeSettings


class NotificationsSettings(RuntimeSettings, ServiceLevelSettings):
    coordinator_email: str = Field(default="", description="The scheme coordinator's mailbox; empty: none")
    partner_api_url: str = Field(default="http://127.0.0.1:8080", description="Links to referrals")
    coordinator_url: str = Field(default="http://127.0.0.1:8082", description="Links to the coordinator page")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none, STARTTLS after connecting, or TLS from the start (port 465)"
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA certificates to trust for the SMTP server (default: the system's)"
    )
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Circles notifications <notifications@circles.example.org>"
    smtp_timeout_s: float = 10.0
    webhook_timeout_s: float = 10.0
    send_concurrency: int = Field(default=16, ge=1, description="Messages sent at once")

    max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=40.0, gt=0, description="First retry after half to all of this")
    retry_cap_s: float = Field(default=3600.0, gt=0)
    retry_scan_interval_s: float = 1.0

    dbs_reminder_days: list[int] = [60, 30, 7]
    schedule_interval_s: float = Field(default=60.0, description="How often service levels are checked")
    digest_enabled: bool = True
    digest_time: time = time(8, 0)

    def routing(self) -> RoutingConfig:
        return RoutingConfig(
            coordinator_email=self.coordinator_email or None,
            partner_api_url=self.partner_api_url,
            coordinator_url=self.coordinator_url,
            dbs_reminder_days=tuple(self.dbs_reminder_days),
        )

    def backoff(self) -> Backoff:
        return Backoff(base_s=self.retry_base_s, cap_s=self.retry_cap_s, max_attempts=self.max_attempts)

    def digest(self) -> DigestSchedule:
        return DigestSchedule(at=self.digest_time)
