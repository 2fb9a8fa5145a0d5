"""Where the tests' broker comes from (``tests/kafka_broker.py``): the order of the choice, and the official
image's container as the tests configure and start it (no Docker engine needed here)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kafka_broker import (
    CLIENT_PORT,
    KAFKA_IMAGE,
    START_READY,
    START_SCRIPT,
    WAIT_THEN_START,
    choose_broker,
    container_env,
    env_name,
    local_kafka,
    session_broker,
    start_container,
    start_script,
)


def docker_not_asked() -> bool:
    raise AssertionError("Docker was asked although a cluster was named")


def test_a_named_cluster_comes_first_and_docker_is_not_asked() -> None:
    assert choose_broker({"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092"}, docker_not_asked) == "cluster"


def test_then_testcontainers_when_a_docker_engine_answers() -> None:
    assert choose_broker({}, lambda: True) == "testcontainers"
    assert choose_broker({"KAFKA_BOOTSTRAP_SERVERS": ""}, lambda: True) == "testcontainers"


def test_else_the_broker_this_project_starts() -> None:
    assert choose_broker({}, lambda: False) == "local"


def test_a_named_cluster_is_used_as_it_is() -> None:
    with session_broker({"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092"}, docker_not_asked) as (address, handle):
        assert (address, handle) == ("kafka-1:9092", None)


def test_the_image_is_the_official_one_running_the_local_brokers_kafka() -> None:
    assert f"apache/kafka:{local_kafka.KAFKA_VERSION}" == KAFKA_IMAGE


@pytest.mark.parametrize(
    ("setting", "variable"),
    [
        ("abc.def", "KAFKA_ABC_DEF"),  # the image's own examples
        ("abc-def", "KAFKA_ABC___DEF"),
        ("abc_def", "KAFKA_ABC__DEF"),
        ("advertised.listeners", "KAFKA_ADVERTISED_LISTENERS"),
        ("share.coordinator.state.topic.min.isr", "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"),
    ],
)
def test_settings_become_the_images_variables(setting: str, variable: str) -> None:
    assert env_name(setting) == variable


def test_the_container_is_a_single_kraft_node_with_the_local_brokers_settings() -> None:
    env = container_env()
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert f"CLIENT://0.0.0.0:{CLIENT_PORT}" in env["KAFKA_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:29093"
    for setting, value in local_kafka.SINGLE_NODE_SETTINGS.items():
        assert env[env_name(setting)] == value, setting
    assert "KAFKA_ADVERTISED_LISTENERS" not in env  # known only once Docker has mapped the port
    assert not any(name.startswith(("KAFKA_ZOOKEEPER", "CONFLUENT")) for name in env)


def test_the_start_script_advertises_the_mapped_port_then_runs_the_images_own_start() -> None:
    script = start_script("127.0.0.1", 49153)
    assert "export KAFKA_ADVERTISED_LISTENERS=CLIENT://127.0.0.1:49153,BROKER://localhost:29092" in script
    assert script.rstrip().endswith("exec /etc/kafka/docker/run")
    assert "/etc/confluent" not in script


class FakeContainer:
    """Stands in for testcontainers' DockerContainer: records what start_container does, in order."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.started = False

    def start(self) -> None:
        self.calls.append("start")
        self.started = True

    def get_container_host_ip(self) -> str:
        return "127.0.0.1"

    def get_exposed_port(self, port: int) -> int:
        assert self.started and port == CLIENT_PORT
        return 49153

    def copy_into_container(self, content: bytes, path: str, mode: int = 0o644) -> None:
        self.calls.append((path, content))

    def get_wrapped_container(self) -> Any:
        class Wrapped:
            status = "running"

            def reload(self) -> None:
                pass

        return Wrapped()

    def get_logs(self) -> tuple[bytes, bytes]:
        ready = any(call[0] == START_READY for call in self.calls if isinstance(call, tuple))
        return (b"[KafkaRaftServer nodeId=1] Kafka Server started\n" if ready else b"", b"")


def test_the_script_goes_in_after_the_port_is_mapped_and_before_the_ready_flag() -> None:
    container = FakeContainer()
    assert start_container(container, seconds=5) == "127.0.0.1:49153"
    assert container.calls == [
        "start",
        (START_SCRIPT, start_script("127.0.0.1", 49153).encode()),
        (START_READY, b""),
    ]
    assert WAIT_THEN_START.index(START_READY) < WAIT_THEN_START.index(START_SCRIPT)
