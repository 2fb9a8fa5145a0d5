"""`circles topics create` (the compose deployment's one-shot job) makes the whole catalogue on a real
broker, is safe to run again, and refuses a topic whose partition count differs from the catalogue.
(What ``create_topics`` gives each topic is checked in test_foundation.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import REFERRAL_EVENTS, TOPICS
from tests.processes import run_cli, service_env

pytestmark = pytest.mark.integration


async def test_creates_the_catalogue_once(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    env = service_env(kafka_bootstrap, prefix, tmp_path)

    first = json.loads(run_cli(env, "topics", "create", "--json").stdout)
    again = json.loads(run_cli(env, "topics", "create", "--json").stdout)

    assert sorted(first["created"]) == sorted(prefix + spec.name for spec in TOPICS)
    assert again == {"created": [], "catalogue": len(TOPICS)}


async def test_a_topic_with_other_partitions_is_refused(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + REFERRAL_EVENTS.name, 2, 1)])
    finally:
        await admin.close()

    result = run_cli(service_env(kafka_bootstrap, prefix, tmp_path), "topics", "create", check=False)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {prefix}{REFERRAL_EVENTS.name} has 2 partitions, the catalogue says "
        f"{REFERRAL_EVENTS.partitions}: recreate it or raise the catalogue's count"
    ]
