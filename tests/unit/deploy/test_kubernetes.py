"""The Kubernetes manifests (deploy/k8s): valid against the Kubernetes and Strimzi schemas, topics and Kafka
users generated from the catalogue, Kafka reachable only over TLS with SASL/SCRAM under ACLs, and every
process deployed once, signed in as its own service's user, configured with settings it has, probed and
scraped on the port it listens on, and scaled no further than its partitions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import generate
from deploy.k8s.validate import HERE as K8S
from deploy.k8s.validate import Resource, Validator, kustomization, resources
from schemas.topics import TOPICS, Service
from services.coordinator.settings import CoordinatorSettings
from services.processes import PROCESSES
from services.protection.keks import add_kek
from services.security.acls import Operation, PatternType, ResourceType, acls, principal, user_of
from tests.unit.deploy.common import (
    ALL_SETTINGS,
    HTTP_PROCESSES,
    PROCESS_SETTINGS,
    ROOT,
    WORKER_SERVICE,
    build,
    env_names,
    listening_port,
    max_useful_replicas,
    metrics_port,
    needs_the_kek,
    settings_from,
)

RESOURCES = list(resources())
WORKLOADS = [r.document for r in RESOURCES if r.document["kind"] in ("Deployment", "StatefulSet")]
SECRET_KEYS = {"coordinator-api-token", "session-secret", "smtp-password"}
"""The keys of the Secret circles-secrets that docs/operations.md tells operators to create."""
KEK_SECRET, KEK_FILE = "circles-kek", "kek.json"
"""The Secret holding the key-encryption key file, created apart (docs/operations.md)."""
CLUSTER_CA_SECRET = "circles-cluster-ca-cert"
"""The Secret in which Strimzi keeps the cluster CA's certificate (``<cluster>-cluster-ca-cert``)."""
KAFKA_USERS = {u["metadata"]["name"]: u for u in (r.document for r in RESOURCES) if u["kind"] == "KafkaUser"}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [r.document for r in RESOURCES if r.document["kind"] == kind]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    return dict(containers[0])


def process_of(workload: dict[str, Any]) -> str:
    args = container(workload)["args"]
    assert args[:2] == ["circles", "run"] and len(args) == 3, args
    return str(args[2])


def config_env() -> dict[str, str]:
    """The ConfigMap kustomize makes from config.env (KEY=VALUE lines, # comments)."""
    (generator,) = kustomization()["configMapGenerator"]
    values: dict[str, str] = {}
    for env_file in generator["envs"]:
        for line in (K8S / env_file).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key] = value
    return values


def environment(workload: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: the ConfigMap, then its own variables (secrets as placeholders)."""
    spec = container(workload)
    (generator,) = kustomization()["configMapGenerator"]
    assert spec["envFrom"] == [{"configMapRef": {"name": generator["name"]}}]
    values = config_env()
    for variable in spec.get("env", []):
        source = variable.get("valueFrom", {})
        if "fieldRef" in source:
            values[variable["name"]] = f"{workload['metadata']['name']}-0"
        elif "secretKeyRef" in source:
            values[variable["name"]] = "placeholder-secret"
        else:
            values[variable["name"]] = variable["value"]
    return values


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: f"{r.path.relative_to(K8S)}:{r.name}")
def test_every_manifest_validates_against_its_schema(resource: Resource, validator: Validator) -> None:
    assert validator.errors(resource.document) == []


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _drop(path: list[str | int]) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


CONTAINER: list[str | int] = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("name", "mutate", "complaint"),
    [
        ("Deployment/referrals-api", _set([*CONTAINER, "livenesProbe"], {}), "'livenesProbe' was unexpected"),
        ("Deployment/referrals-api", _set([*CONTAINER, "ports", 0, "containerPort"], "http"), "not of type"),
        ("StatefulSet/notifications-worker", _drop(["spec", "selector"]), "'selector' is a required"),
        ("Service/referrals-api", _set(["spec", "ports", 0, "port"], "eighty"), "not of type 'integer'"),
        ("Kafka/circles", _set(["spec", "kafka", "listners"], []), "'listners' was unexpected"),
        ("Kafka/circles", _set(["spec", "kafka", "listeners", 0, "type"], "intranet"), "is not one of"),
        ("KafkaNodePool/dual-role", _drop(["spec", "roles"]), "'roles' is a required property"),
        ("KafkaTopic/circles.agencies.v1", _set(["spec", "partitions"], 0), "less than the minimum of 1"),
        ("KafkaTopic/circles.agencies.v1", _set(["metadata", "lables"], {}), "'lables' was unexpected"),
        (
            "KafkaTopic/circles.agencies.v1",
            _set(["apiVersion"], "kafka.strimzi.io/v1beta2"),
            "serves only v1",
        ),
    ],
)
def test_an_invalid_manifest_is_refused(
    name: str, mutate: Callable[[dict[str, Any]], None], complaint: str, validator: Validator
) -> None:
    (document,) = [r.document for r in RESOURCES if r.name == name]
    broken = copy.deepcopy(document)
    mutate(broken)
    errors = validator.errors(broken)
    assert errors and all(complaint in error for error in errors), errors


def test_the_kafka_topics_are_generated_from_the_catalogue() -> None:
    assert generate.stale_files() == [], "run `make schemas` and commit the result"


def test_the_stale_check_notices_an_edited_file(tmp_path: Path) -> None:
    for path, content in generate.render().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    assert generate.stale_files(tmp_path) == []
    topics = generate.render()[generate.TOPICS_FILE]
    (tmp_path / generate.TOPICS_FILE).write_text(topics.replace("partitions: 6", "partitions: 3", 1))
    assert generate.stale_files(tmp_path) == [str(generate.TOPICS_FILE)]
    users = generate.render()[generate.USERS_FILE]
    (tmp_path / generate.USERS_FILE).write_text(users.replace("- Write\n", "", 1))
    assert generate.stale_files(tmp_path) == [str(generate.TOPICS_FILE), str(generate.USERS_FILE)]


def test_each_topic_has_the_catalogues_partitions_and_configuration_on_the_cluster() -> None:
    (kafka,) = of_kind("Kafka")
    (pool,) = of_kind("KafkaNodePool")
    topics = {t["metadata"]["name"]: t for t in of_kind("KafkaTopic")}
    assert sorted(topics) == sorted(spec.name for spec in TOPICS)
    min_insync = kafka["spec"]["kafka"]["config"]["min.insync.replicas"]
    for spec in TOPICS:
        topic = topics[spec.name]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert topic["spec"]["partitions"] == spec.partitions
        assert topic["spec"]["config"] == spec.config
        # Writable (acks=all) while one broker is down: more replicas than min.insync.replicas.
        assert min_insync < topic["spec"]["replicas"] <= pool["spec"]["replicas"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_every_process_runs_in_exactly_one_workload_of_the_image() -> None:
    assert sorted(process_of(w) for w in WORKLOADS) == sorted(PROCESSES)
    images = {image["name"] for image in kustomization()["images"]}
    for workload in WORKLOADS:
        assert workload["metadata"]["name"] == process_of(workload)
        assert container(workload)["image"] in images


def test_the_environment_holds_only_settings_the_processes_have() -> None:
    unknown_config = set(config_env()) - ALL_SETTINGS
    assert not unknown_config, f"config.env sets what no process reads: {unknown_config}"
    for workload in WORKLOADS:
        process = process_of(workload)
        own = {variable["name"] for variable in container(workload).get("env", [])}
        unknown = own - env_names(PROCESS_SETTINGS[process][0])
        assert not unknown, f"{process} does not read {unknown}"


def test_secrets_come_from_the_secret_the_guide_creates() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    used = set()
    for workload in WORKLOADS:
        for variable in container(workload).get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference and variable["name"] == "CIRCLES_KAFKA_PASSWORD":
                assert reference["name"] in KAFKA_USERS, variable  # the User Operator's Secret
            elif reference:
                assert reference["name"] == "circles-secrets", variable
                used.add(reference["key"])
    assert used == SECRET_KEYS
    assert all(f"--from-literal={key}=" in guide for key in SECRET_KEYS)
    assert f"create secret generic {KEK_SECRET} --from-file={KEK_FILE}" in guide
    assert not {"CIRCLES_SESSION_SECRET", "CIRCLES_COORDINATOR_API_TOKEN", "CIRCLES_SMTP_PASSWORD"} & set(
        config_env()
    )


def kek_path(workload: dict[str, Any]) -> str | None:
    """Where the workload mounts the KEK Secret's file, or None; only ever read-only."""
    secret_volumes = {
        volume["name"]
        for volume in workload["spec"]["template"]["spec"]["volumes"]
        if volume.get("secret", {}).get("secretName") == KEK_SECRET
    }
    mounts = [m for m in container(workload)["volumeMounts"] if m["name"] in secret_volumes]
    assert all(m.get("readOnly") for m in mounts)
    return f"{mounts[0]['mountPath']}/{KEK_FILE}" if mounts else None


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["metadata"]["name"])
async def test_each_process_starts_from_its_workloads_environment(
    workload: dict[str, Any], tmp_path: Path
) -> None:
    """Built from the manifest's environment (short of connecting to Kafka), with the KEK Secret's file
    where the manifest mounts it, and only the processes that seal personal data get that file."""
    process = process_of(workload)
    env = environment(workload) | {"CIRCLES_DATA_DIR": str(tmp_path / "data")}
    mounted = kek_path(workload)
    assert env.get("CIRCLES_KEK_FILE") == mounted
    assert (mounted is not None) == needs_the_kek(process, tmp_path / "without"), "the KEK only where needed"
    if mounted:
        add_kek(tmp_path / KEK_FILE)
        env["CIRCLES_KEK_FILE"] = str(tmp_path / KEK_FILE)
    build(process, env)


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["metadata"]["name"])
def test_probes_and_metrics_use_the_port_the_process_listens_on(workload: dict[str, Any]) -> None:
    process = process_of(workload)
    port = listening_port(process, environment(workload))
    spec = container(workload)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    scraped = metrics_port(process, environment(workload))
    assert list(ports.values()) == ([port] if scraped == port else [port, scraped])

    def probe_port(probe: str) -> int:
        target = spec[probe]["httpGet"]["port"]
        return int(ports[target]) if isinstance(target, str) else int(target)

    assert (spec["livenessProbe"]["httpGet"]["path"], probe_port("livenessProbe")) == ("/health", port)
    assert (spec["readinessProbe"]["httpGet"]["path"], probe_port("readinessProbe")) == ("/ready", port)
    assert (spec["startupProbe"]["httpGet"]["path"], probe_port("startupProbe")) == ("/health", port)
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(scraped),
        "prometheus.io/path": "/metrics",
    }
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"]) and "memory" in spec["resources"]["limits"]


@pytest.mark.parametrize("process", HTTP_PROCESSES)
def test_each_http_process_has_a_service_on_its_port(process: str) -> None:
    (workload,) = [w for w in WORKLOADS if process_of(w) == process]
    (service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == process]
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port = listening_port(process, environment(workload))
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "http")]
    if process == "matching-api":  # the coordinator page finds it through its Service
        coordinator = settings_from("coordinator-web", config_env())
        assert isinstance(coordinator, CoordinatorSettings)
        assert coordinator.matching_api_url == f"http://{process}:{port}"


@pytest.mark.parametrize("process", sorted(WORKER_SERVICE))
def test_workers_run_no_more_replicas_than_their_partitions(process: str) -> None:
    (workload,) = [w for w in WORKLOADS if process_of(w) == process]
    assert 1 <= workload["spec"]["replicas"] <= max_useful_replicas(process)


def test_pods_run_as_the_images_unprivileged_user_with_writable_data_and_tmp() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for workload in WORKLOADS:
        pod = workload["spec"]["template"]["spec"]
        assert (
            f"USER {pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" in dockerfile
        )
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        spec = container(workload)
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"] for m in spec["volumeMounts"]}
        assert {"/data", "/tmp"} <= mounts
        assert config_env()["CIRCLES_DATA_DIR"] == "/data"


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {
        str(path.relative_to(K8S)) for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml"
    }
    assert listed == on_disk
    for path in listed:
        assert all(yaml.safe_load_all((K8S / path).read_text()))


_RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.CLUSTER}
_PATTERNS = {"literal": PatternType.LITERAL, "prefix": PatternType.PREFIXED}


def _operation(strimzi_name: str) -> Operation:
    """Strimzi's ``IdempotentWrite`` is Kafka's ``IDEMPOTENT_WRITE``."""
    return Operation["".join(f"_{c}" if c.isupper() else c.upper() for c in strimzi_name).lstrip("_")]


def granted(user: dict[str, Any]) -> set[tuple[str, ResourceType, str, Operation, PatternType]]:
    """What a KafkaUser's ACLs allow, as the catalogue's bindings are written (principal, resource, op)."""
    spec = user["spec"]
    assert spec["authentication"] == {"type": "scram-sha-512"}
    assert spec["authorization"]["type"] == "simple"
    found = set()
    for rule in spec["authorization"]["acls"]:
        assert rule.get("type", "allow") == "allow" and rule.get("host", "*") == "*", rule
        resource = rule["resource"]
        for operation in rule["operations"]:
            found.add(
                (
                    principal(user["metadata"]["name"]),
                    _RESOURCE_TYPES[resource["type"]],
                    resource["name"],
                    _operation(operation),
                    _PATTERNS[resource.get("patternType", "literal")],
                )
            )
    return found


def test_the_kafka_users_have_exactly_the_acls_the_catalogue_derives() -> None:
    (kafka,) = of_kind("Kafka")
    expected = {(a.principal, a.resource_type, a.resource, a.operation, a.pattern) for a in acls()}
    declared = set().union(*(granted(user) for user in KAFKA_USERS.values()))
    assert declared == expected
    assert all(
        u["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        for u in of_kind("KafkaUser")
    )
    assert len(of_kind("KafkaUser")) == len(KAFKA_USERS), "a user declared twice"


def test_a_kafka_user_with_a_right_too_many_or_too_few_differs_from_the_catalogue() -> None:
    expected = {(a.principal, a.resource_type, a.resource, a.operation, a.pattern) for a in acls()}
    user = copy.deepcopy(KAFKA_USERS[user_of(Service.PARTNER_AGENCIES)])
    user["spec"]["authorization"]["acls"][0]["operations"].append("Read")  # agencies reading submissions
    assert not granted(user) <= expected
    user["spec"]["authorization"]["acls"] = []
    assert granted(user) == set() and any(a[0] == principal(user["metadata"]["name"]) for a in expected)


def test_kafka_accepts_only_tls_with_scram_and_denies_what_no_acl_allows() -> None:
    (kafka,) = of_kind("Kafka")
    spec = kafka["spec"]
    listeners = spec["kafka"]["listeners"]
    assert listeners and all(
        listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
        for listener in listeners
    ), "a listener without TLS or authentication"
    assert spec["kafka"]["authorization"]["type"] == "simple"
    assert not spec["kafka"]["authorization"].get("superUsers"), "no super-user among the workloads"
    assert spec["kafka"]["config"].get("allow.everyone.if.no.acl.found", False) is False
    assert "userOperator" in spec["entityOperator"], "the KafkaUsers would never be applied"
    config = config_env()
    host, _, port = config["KAFKA_BOOTSTRAP_SERVERS"].partition(":")
    assert host == f"{kafka['metadata']['name']}-kafka-bootstrap"
    assert int(port) in {listener["port"] for listener in listeners}
    assert config["CIRCLES_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["CIRCLES_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


def credential_problems(workload: dict[str, Any]) -> list[str]:
    """Why the workload would not sign in to Kafka as its own service's user (empty: it does)."""
    process = process_of(workload)
    user = user_of(Service(process.rsplit("-", 1)[0]))
    env = {variable["name"]: variable for variable in container(workload).get("env", [])}
    problems = []
    if env.get("CIRCLES_KAFKA_USERNAME", {}).get("value") != user:
        problems.append(f"{process}: CIRCLES_KAFKA_USERNAME is not {user}")
    password = env.get("CIRCLES_KAFKA_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
    if password != {"name": user, "key": "password"}:
        problems.append(f"{process}: CIRCLES_KAFKA_PASSWORD is not from the Secret {user}, key password")
    if user not in KAFKA_USERS:
        problems.append(f"{process}: no KafkaUser {user}")
    ca_volumes = {
        volume["name"]
        for volume in workload["spec"]["template"]["spec"]["volumes"]
        if volume.get("secret", {}).get("secretName") == CLUSTER_CA_SECRET
    }
    mounted = {
        f"{mount['mountPath']}/ca.crt"
        for mount in container(workload)["volumeMounts"]
        if mount["name"] in ca_volumes
    }
    if config_env()["CIRCLES_KAFKA_CA_FILE"] not in mounted:
        problems.append(f"{process}: the cluster CA is not mounted at CIRCLES_KAFKA_CA_FILE")
    return problems


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["metadata"]["name"])
def test_each_workload_signs_in_to_kafka_as_its_own_services_user(workload: dict[str, Any]) -> None:
    assert credential_problems(workload) == []


def test_a_workload_without_its_credentials_or_with_another_services_is_noticed() -> None:
    (workload,) = [w for w in WORKLOADS if process_of(w) == "referrals-api"]
    without = copy.deepcopy(workload)
    env = without["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [v for v in env if v["name"] != "CIRCLES_KAFKA_PASSWORD"]
    assert credential_problems(without) == [
        "referrals-api: CIRCLES_KAFKA_PASSWORD is not from the Secret circles-referrals, key password"
    ]
    borrowed = copy.deepcopy(workload)
    for variable in borrowed["spec"]["template"]["spec"]["containers"][0]["env"]:
        if variable["name"] == "CIRCLES_KAFKA_USERNAME":
            variable["value"] = "circles-ops"
    assert credential_problems(borrowed) == ["referrals-api: CIRCLES_KAFKA_USERNAME is not circles-referrals"]
