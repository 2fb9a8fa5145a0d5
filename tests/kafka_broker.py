"""How the tests get a real Kafka broker: one per session, isolated per test by topic prefix."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from services.dev import broker as devbroker

local_kafka = devbroker.local_kafka()
LocalKafka = local_kafka.LocalKafka


def docker_engine_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextmanager
def session_broker() -> Iterator[tuple[str, object | None]]:
    """KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers' Kafka if a Docker engine answers; else ours.

    Yields the bootstrap address and, for the broker this project started, its LocalKafka handle.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing, None
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.2").with_kraft() as container:
            yield container.get_bootstrap_server(), None
        return
    broker = LocalKafka()
    broker.start()
    try:
        yield broker.bootstrap_servers, broker
    finally:
        broker.stop()
