"""Settings from the environment (``CIRCLES_*``, plus the conventional ``KAFKA_BOOTSTRAP_SERVERS``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.protection.errors import KekError
from services.protection.keks import LocalKeks


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "circles"


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIRCLES_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "CIRCLES_KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port]; when empty, the broker `circles dev up` started is used",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "info"
    worker_id: str = Field(default="", description="Distinguishes several workers of one service")
    topic_prefix: str = Field(default="", description="Prefix of every topic and group id (test isolation)")
    commit_interval_s: float = 1.0
    session_timeout_s: float = 10.0
    batch_size: int = 500
    batch_within_s: float = 0.005
    standby_replicas: int = 1
    clock: str = Field(default="system", description="'system', or 'file:/path' (see runtime/clock.py)")
    health_host: str = Field(default="127.0.0.1", description="Where workers serve /health, /ready, /metrics")
    health_port: int = Field(default=0, ge=0, le=65535, description="Their port; 0 picks a free one (logged)")
    kek_file: Path | None = Field(
        default=None, description="Key-encryption keys (JSON); default <data dir>/kek.json if it exists"
    )
    kek: SecretStr | None = Field(default=None, description="Or one key-encryption key, base64 of 32 bytes")

    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        broker_file = self.data_dir / "broker.json"
        if broker_file.exists():
            return str(json.loads(broker_file.read_text())["bootstrap_servers"])
        raise ConfigurationError(
            "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS=host:port, or start the system with `make run`"
        )

    def keks(self) -> LocalKeks:
        """The key-encryption keys that wrap the data keys of personal data."""
        if self.kek is not None:
            return LocalKeks.from_base64(self.kek.get_secret_value())
        path = self.kek_file or self.data_dir / "kek.json"
        if self.kek_file is None and not path.exists():
            raise ConfigurationError(
                "no key-encryption key: set CIRCLES_KEK_FILE (create one with `circles keys new-kek PATH`) "
                "or CIRCLES_KEK; `make run` makes one in its data directory"
            )
        try:
            return LocalKeks.from_file(path)
        except KekError as error:
            raise ConfigurationError(str(error)) from None
