"""Generate ``kafka/topics.yaml`` beside this module: one Strimzi KafkaTopic per topic of the catalogue.

    python -m deploy.k8s.generate            # write it (also run by `make schemas`)
    python -m deploy.k8s.generate --check    # exit 1 when it is stale (a test runs this check)

The catalogue (``schemas/topics.py``) stays the one list of topics: their partitions and configuration
reach the cluster through these resources, which the Strimzi Topic Operator applies. On a cluster the
topics have three replicas each; ``circles topics create`` does the same job for the compose deployment.
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

HERE = Path(__file__).resolve().parent
TOPICS_FILE = Path("kafka") / "topics.yaml"
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


def render() -> dict[Path, str]:
    """Every generated file and its content, keyed by path relative to deploy/k8s/."""
    documents = [kafka_topic(spec) for spec in TOPICS]
    return {
        TOPICS_FILE: HEADER + yaml.safe_dump_all(documents, sort_keys=False, width=110, explicit_start=True)
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
    what = "Generate the KafkaTopic resources from the catalogue"
    return schemas_generate.generator_main(
        argv, description=what, folder="deploy/k8s", stale=stale_files, write=write
    )


if __name__ == "__main__":
    sys.exit(main())
