"""``circles ops ...``: the pipeline's health and its dead letters, from the broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import NoReturn

import click
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import ValidationError

from schemas.envelope import describe
from services.ops.check import DEFAULT_INTERVAL_S, DEFAULT_LAG_TOLERANCE, Severity
from services.ops.check import check as check_pipeline
from services.ops.deadletters import list_queues, replay, show
from services.ops.render import letters_text, queues_text, replay_text, status_text
from services.ops.status import pipeline_status
from services.ops.throughput import ThroughputTracker
from services.ops.topology import SERVICES
from services.runtime.cli_support import CliError, bootstrap, echo_json, prefix, run, settings
from services.runtime.kafka_security import KafkaSecurityError
from services.runtime.settings import ConfigurationError

PAYLOAD_WARNING = (
    "warning: dead-letter payloads may hold personal data (names, dates of birth, PNC numbers): "
    "keep this output out of tickets, chats and logs"
)


@click.group()
def ops() -> None:
    """Operations: pipeline status and dead letters."""
    # The Kafka client's own connection errors would print before our one-line reason; keep them out.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@ops.command()
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C, with processing rates")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON (one document per refresh, one line each with --watch)"
)
@click.option(
    "--interval",
    type=float,
    help=f"Seconds between refreshes with --watch (default 2), or between the two readings of --check "
    f"(default {DEFAULT_INTERVAL_S:.0f})",
)
@click.option(
    "--check",
    is_flag=True,
    help="A monitoring check: one line per problem; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
)
@click.option(
    "--lag-tolerance",
    default=DEFAULT_LAG_TOLERANCE,
    show_default=True,
    type=click.IntRange(0),
    help="--check: records a service's lag may grow between the readings before it warns",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice([service.value for service in SERVICES]),
    help="--check: judge only this service (repeatable), e.g. in its own probe",
)
def status(
    watch: bool,
    as_json: bool,
    interval: float | None,
    check: bool,
    lag_tolerance: int,
    services: tuple[str, ...],
) -> None:
    """Per service: consumer lag per topic, end offsets, dead letters and the age of the last event.

    With --check, two readings some seconds apart judge the pipeline: a service without a worker is
    CRITICAL; lag that grew by more than --lag-tolerance, lag that did not move while nothing was
    processed, and dead letters not replayed are WARNINGs (see docs/operations.md).
    """
    if interval is not None and not interval > 0:
        raise CliError("--interval must be more than 0 seconds")
    if check:
        if watch or as_json:
            raise click.UsageError("--check prints its own lines: it takes neither --watch nor --json")
        _check(interval or DEFAULT_INTERVAL_S, lag_tolerance, services)
    servers, topic_prefix = bootstrap(), prefix()
    if not watch:
        current = run(pipeline_status(servers, topic_prefix))
        if as_json:
            echo_json(current)
        else:
            click.echo(status_text(current))
        return
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the watch, quietly
        run(_watch(servers, topic_prefix, as_json, interval or 2.0))


def _check(interval: float, lag_tolerance: int, services: tuple[str, ...]) -> NoReturn:
    """Print the verdict's lines and exit with its code; a check that cannot run says so the same way:
    UNKNOWN when it is not configured, CRITICAL when the broker does not answer."""
    try:
        servers, topic_prefix = settings().bootstrap_servers(), prefix()
    except (ConfigurationError, KafkaSecurityError) as error:
        _verdict(Severity.UNKNOWN, [f"UNKNOWN: {error}"])
    except ValidationError as error:
        _verdict(Severity.UNKNOWN, [f"UNKNOWN: invalid settings: {describe(error)}"])
    try:
        checked = check_pipeline(
            servers, topic_prefix, interval_s=interval, lag_tolerance=lag_tolerance, services=services
        )
        _verdict(*asyncio.run(checked))
    except (KafkaError, OSError, TimeoutError) as error:
        reason = "cannot reach Kafka" if isinstance(error, KafkaConnectionError) else type(error).__name__
        _verdict(Severity.CRITICAL, [f"CRITICAL: {reason} at {servers}"])


def _verdict(severity: Severity, lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(line)
    sys.exit(int(severity))


async def _watch(servers: str, topic_prefix: str, as_json: bool, interval: float) -> None:
    tracker = ThroughputTracker()
    while True:
        current = await pipeline_status(servers, topic_prefix)
        tracker.observe(current)
        if as_json:
            click.echo(json.dumps(current.model_dump(mode="json"), sort_keys=True))
        else:
            if sys.stdout.isatty():
                click.clear()
            click.echo(status_text(current, tracker) + "\n")
        await asyncio.sleep(interval)


@ops.group()
def dlq() -> None:
    """Dead-letter topics: list, show, replay after a fix."""


@dlq.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """Every dead-letter topic: depth, not yet replayed, oldest and newest, counts by reason."""
    queues = run(list_queues(bootstrap(), prefix()))
    if as_json:
        echo_json(queues)
    else:
        click.echo(queues_text(queues))


@dlq.command(name="show")
@click.argument("topic")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="The newest N")
@click.option("--json", "as_json", is_flag=True)
@click.option("--payload", is_flag=True, help="Also print each record's value (may hold personal data)")
def show_command(topic: str, limit: int, as_json: bool, payload: bool) -> None:
    """The newest dead letters of TOPIC (``x.v1.dlq`` or ``x.v1``): reason, origin and event ids."""
    if payload:
        click.echo(PAYLOAD_WARNING, err=True)
    letters = run(show(bootstrap(), prefix(), topic, limit=limit, payload=payload))
    if as_json:
        echo_json(letters)
    else:
        click.echo(letters_text(letters))


@dlq.command(name="replay")
@click.argument("topic")
@click.option("--dry-run", is_flag=True, help="Say what would be republished; change nothing")
@click.option("--json", "as_json", is_flag=True)
def replay_command(topic: str, dry_run: bool, as_json: bool) -> None:
    """Republish TOPIC's dead letters (not replayed before) to their original topic, after a fix.

    Each goes back with its original key, value and headers (without the dlq_* headers), so its event id
    is unchanged. Progress is kept in the consumer group <prefix>circles-ops-replay: a second replay
    republishes nothing already replayed. A crash between republishing and recording progress can
    republish a record once more; that is harmless, because every consumer drops an event id it has
    already processed. Records whose original topic is unknown are skipped and reported. Run one replay
    of a topic at a time.
    """
    report = run(replay(bootstrap(), prefix(), topic, dry_run=dry_run))
    if as_json:
        echo_json(report)
    else:
        click.echo(replay_text(report))
