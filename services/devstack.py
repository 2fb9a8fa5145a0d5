"""`circles dev up`: the whole system on one machine, in the foreground, until Ctrl-C.

Starts a real Kafka broker (KRaft, from Maven Central jars) with its data in the data directory, creates
every topic of the catalogue and prints where things are. State survives a stop and start.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import click

from schemas.topics import TOPICS
from services.devbroker import local_kafka
from services.runtime.kafka import create_topics
from services.runtime.settings import RuntimeSettings


def _broker_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def _already_running(data_dir: Path) -> str | None:
    saved = _broker_file(data_dir)
    if not saved.exists():
        return None
    bootstrap = str(json.loads(saved.read_text())["bootstrap_servers"])
    host, port = bootstrap.split(":")
    return bootstrap if local_kafka().answers_metadata(host, int(port)) else None


class DevStack:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.broker: Any = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = _already_running(self.data_dir)
        if running:
            raise click.ClickException(f"a broker for {self.data_dir} is already running at {running}")
        self.broker = local_kafka().LocalKafka(data_dir=self.data_dir / "kafka")
        bootstrap: str = self.broker.start()
        _broker_file(self.data_dir).write_text(
            json.dumps({"bootstrap_servers": bootstrap, "pid": self.broker.pid})
        )
        created = asyncio.run(create_topics(bootstrap, TOPICS))
        version = local_kafka().KAFKA_VERSION
        click.echo(f"Kafka broker (Apache Kafka {version}, KRaft): {bootstrap}  pid {self.broker.pid}")
        click.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
        click.echo(
            f"Topics: {len(TOPICS)} in the catalogue ({len(created)} created now); data in {self.data_dir}"
        )
        return bootstrap

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        _broker_file(self.data_dir).unlink(missing_ok=True)


def wait_for_interrupt() -> None:
    stop = {"now": False}

    def request_stop(*_: object) -> None:
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    while not stop["now"]:
        signal.pause()


@click.group()
def dev() -> None:
    """Run the system on this machine (development and demonstration)."""


@dev.command()
def up() -> None:
    """Start everything in the foreground; Ctrl-C stops it all cleanly."""
    stack = DevStack(RuntimeSettings())
    try:
        stack.start()
        click.echo("Running. Press Ctrl-C to stop.")
        wait_for_interrupt()
    except local_kafka().KafkaSetupError as error:
        raise click.ClickException(str(error)) from None
    finally:
        click.echo("Stopping...")
        stack.stop()
        click.echo("Stopped.")
