"""``circles topics create``: the catalogue's topics on a broker that ``circles dev up`` did not start.

The compose deployment runs it once before the services start (the broker never creates topics by
itself). On Kubernetes the Strimzi Topic Operator creates them instead, from the KafkaTopic resources
that ``deploy/k8s/generate.py`` makes from the same catalogue.
"""

from __future__ import annotations

import logging

import click

from schemas.topics import TOPICS
from services.runtime.cli_support import CliError, bootstrap, echo_json, prefix, run
from services.runtime.kafka import TopicMismatch, create_topics


@click.group()
def topics() -> None:
    """Kafka topics of the catalogue (schemas/topics.py)."""
    # The Kafka client's own connection errors would print before our one-line reason; keep them out.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@topics.command("create")
@click.option(
    "--replication-factor",
    type=click.IntRange(1, 5),
    default=1,
    show_default=True,
    help="Copies of each partition: 1 on a single broker, 3 on a production cluster",
)
@click.option("--json", "as_json", is_flag=True)
def create(replication_factor: int, as_json: bool) -> None:
    """Create the missing topics (under CIRCLES_TOPIC_PREFIX) and check the partitions of the others.

    Safe to run again: existing topics are left alone. An existing topic with a partition count other
    than the catalogue's is an error (workers rely on referral-keyed topics being co-partitioned).
    """
    try:
        created = run(
            create_topics(bootstrap(), TOPICS, replication_factor=replication_factor, prefix=prefix())
        )
    except TopicMismatch as error:
        raise CliError(str(error)) from None
    if as_json:
        echo_json({"created": created, "catalogue": len(TOPICS)})
        return
    for name in created:
        click.echo(f"created {name}")
    click.echo(
        f"{len(created)} created, {len(TOPICS) - len(created)} already there ({len(TOPICS)} in the catalogue)"
    )
