"""The compose deployment (deploy/compose): a valid Compose file that runs every process once with settings
it has, checks each one's /ready on the port it listens on, has Prometheus scrape that port, creates the
topics and applies the ACLs before anything starts, and takes its secrets from an env file whose example
holds none; Kafka only over TLS with SASL/SCRAM under the catalogue's ACLs, each service signed in as its
own service's user with credentials made per deployment."""

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

from deploy.compose import credentials
from schemas.topics import Service
from services.cli import main
from services.processes import PROCESSES
from services.security.acls import ADMIN_USER, OPERATIONS_USER, user_of, users
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
        assert service["depends_on"] == {"acls": {"condition": "service_completed_successfully"}}
    assert SERVICES["acls"]["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}
    assert SERVICES["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert "healthcheck" in SERVICES["kafka"]


START = (COMPOSE / "kafka-start.sh").read_text()
BROKER = dict(
    line.split("=", 1) for line in START.split("<<PROPERTIES\n")[1].split("\nPROPERTIES\n")[0].splitlines()
)
"""The broker's configuration as kafka-start.sh writes it."""


def test_the_services_reach_the_broker_at_its_advertised_address() -> None:
    advertised = dict(listener.split("://") for listener in BROKER["advertised.listeners"].split(","))
    assert BROKER["auto.create.topics.enable"] == "false"
    for name, service in SERVICES.items():
        if service.get("command", [""])[0] == "circles":
            assert environment(service)["KAFKA_BOOTSTRAP_SERVERS"] == advertised["INTERNAL"], name
    assert SERVICES["kafka"]["ports"] == [f"127.0.0.1:{advertised['HOST'].rsplit(':', 1)[1]}:9094"]


def test_the_broker_takes_clients_only_over_tls_with_scram_and_enforces_acls() -> None:
    protocols = dict(pair.split(":") for pair in BROKER["listener.security.protocol.map"].split(","))
    listeners = dict(listener.split("://") for listener in BROKER["listeners"].split(","))
    for name, protocol in protocols.items():
        assert protocol == "SASL_SSL" or listeners[name].startswith("127.0.0.1:"), (
            f"{name} takes {protocol} from other containers"
        )
    assert protocols["CONTROLLER"] == "PLAINTEXT" and BROKER["controller.listener.names"] == "CONTROLLER"
    assert BROKER["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert BROKER["authorizer.class.name"].endswith("StandardAuthorizer")
    assert BROKER["allow.everyone.if.no.acl.found"] == "false"
    assert BROKER["super.users"] == f"User:{ADMIN_USER}"
    assert "password" not in START.replace("password=$", "").replace('password="$', ""), "a secret in it"
    assert SERVICES["kafka"]["command"] == ["bash", "/opt/circles/kafka-start.sh"]
    assert SERVICES["kafka"]["env_file"] == ["secrets/kafka.env"]


def test_each_service_signs_in_to_kafka_as_its_own_services_user() -> None:
    expected = {name: user_of(Service(name.rsplit("-", 1)[0])) for name in PROCESS_SERVICES}
    expected |= {"topics": ADMIN_USER, "acls": ADMIN_USER, "cli": OPERATIONS_USER}
    for name, service in SERVICES.items():
        if service.get("command", [""])[0] != "circles":
            continue
        assert service.get("env_file") == [f"secrets/{credentials.env_file_of(expected[name])}"], name
        env = environment(service)
        assert env["CIRCLES_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["CIRCLES_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert f"./secrets/tls/ca.pem:{env['CIRCLES_KAFKA_CA_FILE']}:ro" in service["volumes"], name
        assert not {"CIRCLES_KAFKA_USERNAME", "CIRCLES_KAFKA_PASSWORD"} & set(env), "only from its env file"


def test_the_credentials_give_every_principal_its_own_password_and_keep_them_private(
    tmp_path: Path,
) -> None:
    written = credentials.make(tmp_path)
    assert written and credentials.make(tmp_path) == [], "a second run keeps the passwords"
    found = {}
    for user in [ADMIN_USER, *users()]:
        path = tmp_path / credentials.env_file_of(user)
        assert path.stat().st_mode & 0o777 == 0o600
        values = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if not line.startswith("#")
        )
        assert values["CIRCLES_KAFKA_USERNAME"] == user
        found[user] = values["CIRCLES_KAFKA_PASSWORD"]
    assert len(set(found.values())) == len(found), "two principals share a password"
    broker = dict(
        line.split("=", 1) for line in (tmp_path / "kafka.env").read_text().splitlines() if "=" in line
    )
    assert (tmp_path / "kafka.env").stat().st_mode & 0o777 == 0o600
    assert dict(pair.split("=", 1) for pair in broker["CIRCLES_SCRAM_USERS"].split()) == found
    assert broker["CIRCLES_KAFKA_ADMIN_PASSWORD"] == found[ADMIN_USER]
    assert (tmp_path / "tls" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert {p.name for p in (tmp_path / "tls").iterdir()} == {"ca.pem", "broker.p12", "truststore.p12"}
    assert "/deploy/compose/secrets/" in (DEPLOY.parent / ".gitignore").read_text().splitlines()


def test_secrets_come_from_the_env_file_and_its_example_holds_none() -> None:
    variables = interpolation_variables(TEXT)
    assert set(variables) <= set(EXAMPLE), "every ${VARIABLE} is explained in .env.example"
    required = {name for name, default in variables.items() if default is None}
    assert {"CIRCLES_KEK", "CIRCLES_COORDINATOR_API_TOKEN", "CIRCLES_SESSION_SECRET"} <= required
    assert all(EXAMPLE[name] == "" for name in required | {"CIRCLES_SMTP_PASSWORD"})
    assert "/deploy/compose/.env" in (DEPLOY.parent / ".gitignore").read_text().splitlines()
