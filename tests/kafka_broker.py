"""How the tests get a real Kafka broker: one per session, isolated per test by topic prefix.

Where it comes from (``choose_broker``, in this order): the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``;
else a container of the official ``apache/kafka`` image when a Docker engine answers; else a broker this
project starts from the Maven Central jars (``deploy/kafka/local_kafka.py``).

Why the official image through testcontainers' generic ``DockerContainer`` and not its Kafka module: the
module's ``KafkaContainer`` is written for Confluent's images. Its ``with_kraft()`` refuses any tag below
7.0.0 (so ``apache/kafka:4.1.2`` fails before starting), and its start script runs Confluent's
``/etc/confluent/docker/configure`` and ``launch``, which the official image does not have. The official
image brings its own start (``/etc/kafka/docker/run``: defaults, ``KAFKA_*`` variables rendered into
``server.properties``, storage formatted, broker launched) and runs the same Kafka 4.1.2 as the local
broker; Confluent's 7.x images carry Kafka 3.x. What the image cannot know before it starts is the host
port Docker maps its client listener to, which it must advertise: so the container waits for a start script
that the tests copy in once the port is known (exporting ``KAFKA_ADVERTISED_LISTENERS``), then runs the
image's own start (as testcontainers-java's ``org.testcontainers.kafka.KafkaContainer`` does).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from services.dev import broker as devbroker

local_kafka = devbroker.local_kafka()
LocalKafka = local_kafka.LocalKafka

Source = Literal["cluster", "testcontainers", "local"]
KAFKA_IMAGE = f"apache/kafka:{local_kafka.KAFKA_VERSION}"
CLIENT_PORT = 9092
START_SCRIPT = "/tmp/circles-start.sh"
START_READY = "/tmp/circles-start.ready"
"""Copied in after the script, so the waiting shell never reads a script still being written."""
STARTED = re.compile(r"Kafka Server started")
START_S = 240
"""How long the session's broker may take to answer: seconds when the machine is idle, minutes when others'
test runs share its two cores."""


def docker_engine_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def choose_broker(env: Mapping[str, str], docker_answers: Callable[[], bool]) -> Source:
    """Which broker the session uses; Docker is asked only when no cluster is named."""
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "cluster"
    if docker_answers():
        return "testcontainers"
    return "local"


def env_name(setting: str) -> str:
    """The official image's variable for a broker setting: ``KAFKA_`` + the name upper-cased, with ``.`` as
    ``_``, ``_`` as ``__`` and ``-`` as ``___`` (the image's ``kafka-propertiesSpec``)."""
    return "KAFKA_" + setting.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def container_env() -> dict[str, str]:
    """A single KRaft node: clients on 9092 (advertised at start), broker and controller traffic inside the
    container, and the same settings as the local broker (``SINGLE_NODE_SETTINGS``)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@localhost:29093",
        "listeners": f"CLIENT://0.0.0.0:{CLIENT_PORT},BROKER://localhost:29092,CONTROLLER://localhost:29093",
        "listener.security.protocol.map": "CLIENT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "BROKER",
        "controller.listener.names": "CONTROLLER",
        **local_kafka.SINGLE_NODE_SETTINGS,
    }
    return {env_name(name): value for name, value in settings.items()}


def start_script(host: str, port: int) -> str:
    """What the container runs once its client port is mapped: advertise it, then the image's own start."""
    return (
        "#!/bin/bash\n"
        f"export {env_name('advertised.listeners')}=CLIENT://{host}:{port},BROKER://localhost:29092\n"
        "exec /etc/kafka/docker/run\n"
    )


WAIT_THEN_START = f"while [ ! -f {START_READY} ]; do sleep 0.1; done; exec bash {START_SCRIPT}"


def kafka_container(image: str = KAFKA_IMAGE) -> Any:
    """An ``apache/kafka`` container (testcontainers' generic container) that ``start_container`` starts."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_exposed_ports(CLIENT_PORT)
    for name, value in container_env().items():
        container.with_env(name, value)
    return container.with_command(["sh", "-c", WAIT_THEN_START])


def start_container(container: Any, seconds: float = 120) -> str:
    """Start it, hand it its start script, wait for the broker; returns the bootstrap address."""
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container.start()
    host, port = container.get_container_host_ip(), int(container.get_exposed_port(CLIENT_PORT))
    container.copy_into_container(start_script(host, port).encode(), START_SCRIPT, 0o755)
    container.copy_into_container(b"", START_READY)
    LogMessageWaitStrategy(STARTED).with_startup_timeout(int(seconds)).wait_until_ready(container)
    return f"{host}:{port}"


@contextmanager
def session_broker(
    env: Mapping[str, str] = os.environ, docker_answers: Callable[[], bool] = docker_engine_answers
) -> Iterator[tuple[str, object | None]]:
    """The session's broker (``choose_broker``). Yields its bootstrap address and, for the broker this
    project started, its LocalKafka handle."""
    source = choose_broker(env, docker_answers)
    if source == "cluster":
        yield env["KAFKA_BOOTSTRAP_SERVERS"], None
    elif source == "testcontainers":
        container = kafka_container()
        try:
            yield start_container(container), None
        finally:
            container.stop()
    else:
        broker = LocalKafka()
        broker.start(timeout=START_S)
        try:
            yield broker.bootstrap_servers, broker
        finally:
            broker.stop()
