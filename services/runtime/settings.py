"""Settings from the environment (``CIRCLES_*``, plus the conventional ``KAFKA_BOOTSTRAP_SERVERS``), and for
what the environment leaves unset, from the running `make run` stack's record (``stack_record.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.destinations import DestinationPolicy
from services.runtime.kafka_security import KafkaSecurity, Mechanism, Protocol
from services.runtime.stack_record import (
    LOCAL_DATA_DIR,
    RECORD,
    StackRecord,
    find_data_dir,
    read_record,
    xdg_data_dir,
)


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


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
    data_dir: Path = Field(
        default_factory=find_data_dir,
        description="default: the nearest .circles/ (what `make run` uses) from here up, else "
        "$XDG_DATA_HOME/circles",
    )
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
    webhook_allow_loopback_http: bool = Field(
        default=False,
        description="Webhooks to this host, over http too (the dev stack's receivers)",
    )
    webhook_allow_private: bool = Field(
        default=False, description="Webhooks to private network addresses (an agency over a private link)"
    )
    kek_file: Path | None = Field(
        default=None, description="Key-encryption keys (JSON); default <data dir>/kek.json if it exists"
    )
    kek: SecretStr | None = Field(default=None, description="Or one key-encryption key, base64 of 32 bytes")

    def state_dir(self, process: str) -> Path:
        """Where a long-running process keeps its on-disk copies between starts (one RocksDB directory per
        copy): ``<data dir>/state/<prefix><process>/<worker id or "main">``. Two processes given the same
        one get a temporary copy in the second (``LocalStore``: correct, only slower to start)."""
        return self.data_dir / "state" / f"{self.topic_prefix}{process}" / (self.worker_id or "main")

    def destinations(self) -> DestinationPolicy:
        """Where webhooks may go (``services.runtime.destinations``)."""
        loopback = self.webhook_allow_loopback_http
        if not loopback and not self.kafka_bootstrap_servers:  # a command beside `make run`: as its stack
            record = read_record(self.data_dir)
            loopback = record is not None and record.webhook_allow_loopback_http and record.broker_alive()
        return DestinationPolicy(allow_loopback_http=loopback, allow_private=self.webhook_allow_private)

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

    @model_validator(mode="after")
    def _follow_the_running_stack(self) -> Self:
        """What the environment does not say, the stack running on this data directory says: its topic
        prefix, key-encryption key file and clock (its broker address: ``bootstrap_servers()``)."""
        record = read_record(self.data_dir)
        if record is not None:
            if "topic_prefix" not in self.model_fields_set:
                self.topic_prefix = record.topic_prefix
            if not {"kek", "kek_file"} & self.model_fields_set and record.kek_file is not None:
                self.kek_file = record.kek_file
            if "clock" not in self.model_fields_set and record.broker_alive():
                self.clock = record.clock  # a rehearsal's moved "now" holds for the commands beside it too
        return self

    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        record = read_record(self.data_dir)
        if record is not None and record.broker_alive():
            return record.bootstrap_servers
        raise ConfigurationError(f"no Kafka broker: {self._where_looked(record)}")

    def bootstrap_origin(self) -> str:
        """Where ``bootstrap_servers()`` came from, for an error message."""
        if self.kafka_bootstrap_servers:
            return "from KAFKA_BOOTSTRAP_SERVERS"
        return f"from {self.data_dir / RECORD}, written by `make run`"

    def _where_looked(self, record: StackRecord | None) -> str:
        record_file = self.data_dir / RECORD
        if record is not None:
            found = f"{record_file} names a broker that has stopped"
        elif "data_dir" in self.model_fields_set:
            found = f"CIRCLES_DATA_DIR has no {record_file}"
        elif self.data_dir.name == LOCAL_DATA_DIR:
            found = f"{self.data_dir} (the nearest .circles) has no {RECORD}"
        else:
            found = f"no .circles/ in {Path.cwd()} or its parents, and no {xdg_data_dir() / RECORD}"
        return (
            f"KAFKA_BOOTSTRAP_SERVERS is not set, and {found}; start the system with `make run` in the "
            "repository folder and run circles there, or set KAFKA_BOOTSTRAP_SERVERS=host:port"
        )
