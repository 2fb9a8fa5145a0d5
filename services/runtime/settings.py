"""Settings from the environment (``CIRCLES_*``, plus the conventional ``KAFKA_BOOTSTRAP_SERVERS``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.kafka_security import KafkaSecurity, Mechanism, Protocol


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
    kafka_security_protocol: Protocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL (TLS), or SASL_SSL (TLS and SASL/SCRAM)"
    )
    kafka_sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    kafka_username: str = Field(default="", description="SASL/SCRAM user: this process's Kafka principal")
    kafka_password: SecretStr = SecretStr("")
    kafka_ca_file: Path | None = Field(
        default=None, description="PEM CA file that signed the broker's certificate (default: system CAs)"
    )
    kafka_cert_file: Path | None = Field(default=None, description="Client certificate (PEM) for mutual TLS")
    kafka_key_file: Path | None = Field(default=None, description="Its private key (PEM)")
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "info"
    worker_id: str = Field(default="", description="Distinguishes several workers of one service")
    topic_prefix: str = Field(default="", description="Prefix of every topic and group id (test isolation)")
    commit_interval_s: float = 1.0
    session_timeout_s: float = 10.0
    batch_size: int = Field(default=500, description="Records a worker takes in one batch when idle")
    max_batch_size: int = Field(default=5000, description="...and up to this under load (batches grow)")
    pipeline_depth: int = Field(default=4, ge=1, description="Batches a worker has in flight at once")
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="APIs: how long a request waits for the broker before answering 503"
    )
    clock: str = Field(default="system", description="'system', or 'file:/path' (see runtime/clock.py)")
    health_host: str = Field(default="127.0.0.1", description="Where workers serve /health, /ready, /metrics")
    health_port: int = Field(default=0, ge=0, le=65535, description="Their port; 0 picks a free one (logged)")
    kek_file: Path | None = Field(
        default=None, description="Key-encryption keys (JSON); default <data dir>/kek.json if it exists"
    )
    kek: SecretStr | None = Field(default=None, description="Or one key-encryption key, base64 of 32 bytes")

    def kafka_security(self) -> KafkaSecurity:
        """What ``services.runtime.kafka_security.security_options()`` gives every client of the process."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        )

    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        broker_file = self.data_dir / "broker.json"
        if broker_file.exists():
            return str(json.loads(broker_file.read_text())["bootstrap_servers"])
        raise ConfigurationError(
            "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS=host:port, or start the system with `make run`"
        )
