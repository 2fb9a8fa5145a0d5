"""How every Kafka client of a process connects: plaintext, TLS, or TLS with SASL/SCRAM.

One helper for every aiokafka client: each construction site passes ``**security_options()`` beside its
``bootstrap_servers``. The options come from the process's ``CIRCLES_KAFKA_*`` settings (read once, see
``RuntimeSettings``), so a process is one Kafka principal and the many places that only receive a
bootstrap address need no new parameter. ``using(security)`` replaces them for the code inside it (tests,
and a command acting as another principal, e.g. the admin that applies ACLs).

The password is a ``SecretStr``: it is never logged, printed or put in an exception message.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import BaseModel, ConfigDict, SecretStr

Protocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
Mechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


class KafkaSecurityError(ValueError):
    """The security settings do not make a usable connection; the message says which setting to fix."""


class KafkaSecurity(BaseModel):
    """The security part of a Kafka connection (the ``CIRCLES_KAFKA_*`` settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = SecretStr("")
    ca_file: Path | None = None
    cert_file: Path | None = None
    """Client certificate (PEM) for mutual TLS; with ``key_file``."""
    key_file: Path | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and ``AIOKafkaAdminClient``."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {
            "security_protocol": self.protocol,
            "ssl_context": _ssl_context(self.ca_file, self.cert_file, self.key_file),
        }
        if self.protocol == "SASL_SSL":
            if not self.username or not self.password.get_secret_value():
                raise KafkaSecurityError(
                    "CIRCLES_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs CIRCLES_KAFKA_USERNAME and "
                    "CIRCLES_KAFKA_PASSWORD"
                )
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password.get_secret_value(),
            }
        return options


@functools.lru_cache(maxsize=16)
def _ssl_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name against ``ca_file`` (the system's CAs when None)."""
    if (cert_file is None) != (key_file is None):
        raise KafkaSecurityError("CIRCLES_KAFKA_CERT_FILE and CIRCLES_KAFKA_KEY_FILE go together")
    for name, path in (("CA", ca_file), ("certificate", cert_file), ("key", key_file)):
        if path is not None and not path.is_file():
            raise KafkaSecurityError(f"Kafka TLS {name} file {path} does not exist")
    context: ssl.SSLContext = create_ssl_context(cafile=ca_file, certfile=cert_file, keyfile=key_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_override: ContextVar[KafkaSecurity | None] = ContextVar("kafka_security", default=None)


@functools.cache
def _from_environment() -> KafkaSecurity:
    from services.runtime.settings import RuntimeSettings

    return RuntimeSettings().kafka_security()


def current_security() -> KafkaSecurity:
    """The security in force here: ``using(...)``'s, else the process's settings."""
    return _override.get() or _from_environment()


def security_options() -> dict[str, Any]:
    """The one way to secure a Kafka client: ``AIOKafkaConsumer(..., **security_options())``."""
    return current_security().client_options()


@contextlib.contextmanager
def using(security: KafkaSecurity) -> Iterator[KafkaSecurity]:
    """Clients created inside (in this thread or task, and in tasks started from it) use ``security``."""
    token = _override.set(security)
    try:
        yield security
    finally:
        _override.reset(token)
