"""The compose deployment (deploy/compose): a valid Compose file that runs every process once with settings
it has, checks each one's /ready on the port it listens on, has Prometheus scrape that port, creates the
topics before anything starts, and takes its secrets from an env file whose example holds none."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from services.cli import main
from services.processes import PROCESSES
from tests.unit.deploy.common import (
    DEPLOY,
    PROCESS_SETTINGS,
    a_kek,
    build,
    env_names,
    interpolate,
    interpolation_variables,
    listening_port,
    metrics_port,
    needs_the_kek,
)

COMPOSE = DEPLOY / "compose"
TEXT = (COMPOSE / "compose.yaml").read_text()
EXAMPLE = dict(
    line.split("=", 1)
    for line in (COMPOSE / ".env.example").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
# As compose sees it with every secret set (placeholders stand for the operator's values).
COMPOSE_FILE: dict[str, Any] = yaml.safe_load(
    interpolate(
        TEXT,
        {name: value or "placeholder-secret" for name, value in EXAMPLE.items()} | {"CIRCLES_KEK": a_kek()},
    )
)
SERVICES: dict[str, dict[str, Any]] = COMPOSE_FILE["services"]
PROCESS_SERVICES = {
    name: service
    for name, service in SERVICES.items()
    if service.get("command", [])[:2] == ["circles", "run"]
}


def process_of(service: dict[str, Any]) -> str:
    return str(service["command"][2])


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in service.get("environment", {}).items()}


def compose_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    )
    return schema


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    assert schema_errors(yaml.safe_load(TEXT)) == []


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("kafka", "helthcheck", {"test": ["CMD", "true"]}),
        ("referrals-api", "ports", "8080:8080"),
        ("referrals-worker", "restart", ["always"]),
    ],
)
def test_an_invalid_compose_file_is_refused(service: str, key: str, value: Any) -> None:
    document = copy.deepcopy(yaml.safe_load(TEXT))
    document["services"][service][key] = value
    assert schema_errors(document)


def test_every_process_runs_in_exactly_one_service_named_after_it() -> None:
    assert sorted(process_of(s) for s in PROCESS_SERVICES.values()) == sorted(PROCESSES)
    assert all(name == process_of(service) for name, service in PROCESS_SERVICES.items())


def test_every_circles_command_exists() -> None:
    commands = [s["command"] for s in SERVICES.values() if s.get("command", [""])[0] == "circles"]
    assert ["circles", "topics", "create"] in commands
    for command in commands:
        result = CliRunner().invoke(main, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_the_environment_holds_only_settings_the_processes_have() -> None:
    for name, service in SERVICES.items():
        if service.get("command", [""])[0] != "circles":
            continue
        process = process_of(service) if name in PROCESS_SERVICES else "referrals-worker"
        unknown = set(environment(service)) - env_names(PROCESS_SETTINGS[process][0])
        assert not unknown, f"{name} does not read {unknown}"


@pytest.mark.parametrize("name", sorted(PROCESS_SERVICES))
async def test_each_process_starts_from_its_services_environment(name: str, tmp_path: Path) -> None:
    """Built from the compose environment (short of connecting to Kafka); only the processes that seal
    personal data get the key-encryption key."""
    service = PROCESS_SERVICES[name]
    env = environment(service) | {"CIRCLES_DATA_DIR": str(tmp_path / "data")}
    assert ("CIRCLES_KEK" in env) == needs_the_kek(name, tmp_path / "without"), "the KEK only where needed"
    build(name, env)


@pytest.mark.parametrize("name", sorted(PROCESS_SERVICES))
def test_readiness_and_metrics_use_the_port_the_process_listens_on(name: str) -> None:
    service = PROCESS_SERVICES[name]
    port = listening_port(process_of(service), environment(service))
    assert f"'http://127.0.0.1:{port}/ready'" in " ".join(service["healthcheck"]["test"])
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == name]
    scraped = metrics_port(process_of(service), environment(service))
    assert job["dns_sd_configs"] == [{"names": [name], "type": "A", "port": scraped}]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    for published in service.get("ports", []):
        assert published == f"127.0.0.1:{port}:{port}", "publish on the host's loopback only"


def test_services_start_after_the_topics_and_the_topics_after_the_broker() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on a missing {dependency}"
    for service in PROCESS_SERVICES.values():
        assert service["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}
    assert SERVICES["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert "healthcheck" in SERVICES["kafka"]


def test_the_services_reach_the_broker_at_its_advertised_address() -> None:
    kafka = SERVICES["kafka"]["environment"]
    advertised = dict(listener.split("://") for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for name, service in SERVICES.items():
        if service.get("command", [""])[0] == "circles":
            assert environment(service)["KAFKA_BOOTSTRAP_SERVERS"] == advertised["PLAINTEXT"], name


def test_secrets_come_from_the_env_file_and_its_example_holds_none() -> None:
    variables = interpolation_variables(TEXT)
    assert set(variables) <= set(EXAMPLE), "every ${VARIABLE} is explained in .env.example"
    required = {name for name, default in variables.items() if default is None}
    assert {"CIRCLES_KEK", "CIRCLES_COORDINATOR_API_TOKEN", "CIRCLES_SESSION_SECRET"} <= required
    assert all(EXAMPLE[name] == "" for name in required | {"CIRCLES_SMTP_PASSWORD"})
    assert "/deploy/compose/.env" in (DEPLOY.parent / ".gitignore").read_text().splitlines()
