"""Generate beside this module ``kafka/topics.yaml``, one Strimzi KafkaTopic per topic of the catalogue, and
``kafka/users.yaml``, one Strimzi KafkaUser per Kafka principal with the ACLs ``services.security.acls``
derives from the catalogue.

    python -m deploy.k8s.generate            # write them (also run by `make schemas`)
    python -m deploy.k8s.generate --check    # exit 1 when one is stale (a test runs this check)

The catalogue (``schemas/topics.py``) stays the one list of topics: their partitions and configuration
reach the cluster through these resources, which the Strimzi Topic Operator applies. On a cluster the
topics have three replicas each; ``circles topics create`` does the same job for the compose deployment.
The User Operator makes each KafkaUser a SCRAM-SHA-512 user with a generated password, kept in a Secret of
the user's name (key ``password``), and applies its ACLs; the workloads read their service's Secret. It
does for the cluster what ``circles kafka acls apply`` does on a broker run by hand (``deploy/kafka``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy.k8s.strimzi import API_VERSION
from schemas import generate as schemas_generate
from schemas.topics import TOPICS, TopicSpec
from services.security.acls import Acl, PatternType, ResourceType, rights

HERE = Path(__file__).resolve().parent
TOPICS_FILE = Path("kafka") / "topics.yaml"
USERS_FILE = Path("kafka") / "users.yaml"
CLUSTER = "circles"
"""The Kafka resource's name (kafka/kafka.yaml): the Topic Operator applies topics labelled with it."""
REPLICAS = 3
HEADER = (
    "# Generated from schemas/topics.py by `python -m deploy.k8s.generate` (`make schemas`): do not edit.\n"
    "# One KafkaTopic per topic of the catalogue, applied by the Strimzi Topic Operator.\n"
)
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def kafka_topic(spec: TopicSpec) -> dict[str, Any]:
    if not _RESOURCE_NAME.match(spec.name) or len(spec.name) > 253:
        raise ValueError(f"{spec.name} is not a Kubernetes resource name: give the KafkaTopic a topicName")
    return {
        "apiVersion": f"kafka.strimzi.io/{API_VERSION}",
        "kind": "KafkaTopic",
        "metadata": {
            "name": spec.name,
            "labels": {
                "strimzi.io/cluster": CLUSTER,
                "app.kubernetes.io/part-of": "circles",
                "circles.example.org/owner": spec.owner.value,
                "circles.example.org/personal-data": str(spec.personal_data).lower(),
            },
            "annotations": {"circles.example.org/description": spec.description},
        },
        "spec": {"partitions": spec.partitions, "replicas": REPLICAS, "config": dict(spec.config)},
    }


USERS_HEADER = (
    "# Generated from schemas/topics.py and services/processes.py (services/security/acls.py) by\n"
    "# `python -m deploy.k8s.generate` (`make schemas`): do not edit. One KafkaUser per Kafka principal,\n"
    "# SCRAM-SHA-512, with the ACLs derived from the catalogue (as deploy/kafka/acls.yaml lists them); the\n"
    "# Strimzi User Operator keeps each user's password in the Secret of its name, key `password`.\n"
)
_RESOURCE_TYPES = {ResourceType.TOPIC: "topic", ResourceType.GROUP: "group", ResourceType.CLUSTER: "cluster"}
_PATTERNS = {PatternType.LITERAL: "literal", PatternType.PREFIXED: "prefix"}


def strimzi_operation(acl: Acl) -> str:
    """Kafka's operation name as Strimzi spells it: READ → Read, IDEMPOTENT_WRITE → IdempotentWrite."""
    return "".join(part.capitalize() for part in acl.operation.name.split("_"))


def kafka_user(user: str, processes: tuple[str, ...], acls: list[Acl]) -> dict[str, Any]:
    by_resource: dict[tuple[str, str, str], list[str]] = {}
    for acl in sorted(acls):
        resource = (_RESOURCE_TYPES[acl.resource_type], acl.resource, _PATTERNS[acl.pattern])
        by_resource.setdefault(resource, []).append(strimzi_operation(acl))
    return {
        "apiVersion": f"kafka.strimzi.io/{API_VERSION}",
        "kind": "KafkaUser",
        "metadata": {
            "name": user,
            "labels": {"strimzi.io/cluster": CLUSTER, "app.kubernetes.io/part-of": "circles"},
            "annotations": {
                "circles.example.org/processes": ", ".join(processes) or "systems outside the cluster"
            },
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [
                    {
                        "resource": {"type": kind, "name": name, "patternType": pattern},
                        "operations": sorted(set(operations)),
                        "host": "*",
                    }
                    for (kind, name, pattern), operations in by_resource.items()
                ],
            },
        },
    }


def kafka_users() -> list[dict[str, Any]]:
    """The deployment has no topic prefix: the ACLs name the catalogue's topics and groups as they are."""
    return [kafka_user(user, entry.processes, entry.acls()) for user, entry in rights().items()]


def render() -> dict[Path, str]:
    """Every generated file and its content, keyed by path relative to deploy/k8s/."""
    documents = [kafka_topic(spec) for spec in TOPICS]
    return {
        TOPICS_FILE: HEADER + yaml.safe_dump_all(documents, sort_keys=False, width=110, explicit_start=True),
        USERS_FILE: USERS_HEADER
        + yaml.safe_dump_all(kafka_users(), sort_keys=False, width=110, explicit_start=True),
    }


def stale_files(root: Path = HERE) -> list[str]:
    return schemas_generate.stale_files(root, render)


def write(root: Path = HERE) -> list[str]:
    changed, stale = [], set(stale_files(root))
    for path, content in render().items():
        if str(path) in stale:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(content)
            changed.append(str(path))
    return changed


def main(argv: list[str] | None = None) -> int:
    what = "Generate the KafkaTopic and KafkaUser resources from the catalogue"
    return schemas_generate.generator_main(
        argv, description=what, folder="deploy/k8s", stale=stale_files, write=write
    )


if __name__ == "__main__":
    sys.exit(main())
