"""`circles dev up`: the whole system on one machine, in the foreground, until Ctrl-C.

A real Kafka broker (KRaft, from Maven Central jars) with its data in the data directory, every topic of
the catalogue, every process of ``services/processes.py`` (restarted if one dies), a local mailbox for
the emails, and synthetic sample data on the first start. Logs go to ``<data>/logs/``; the console shows
what a user needs: where things are, the demo keys, how to submit a referral, and each email as it comes.
State survives a stop and start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from services.dev.broker import local_kafka
from services.dev.forking import Forked, fork_into, preload
from services.dev.seed import Credentials, sample_referral, today_utc
from services.processes import START_GATE, WORKERS
from services.runtime.settings import RuntimeSettings
from services.runtime.stack_record import LOCAL_DATA_DIR, StackRecord, remove_record, write_record

if TYPE_CHECKING:
    from services.dev.webhooks import WebhookReceiver

APIS = ("referrals-api", "matching-api", "coordinator-web", "volunteers-web")
COORDINATOR_EMAIL = "coordinator@humbercare.example.org"
START_GATE_FILE = "started"
"""In the data directory while the stack's broker answers and its topics exist: the processes' start gate."""


class DevSettings(RuntimeSettings):
    """The ports the stack gives its processes (the same ``CIRCLES_*`` names the processes read)."""

    api_port: int = 8080
    matching_api_port: int = 8081
    web_port: int = 8082
    volunteers_web_port: int = 8084
    smtp_port: int = 8025
    webhook_port: int = 8085
    """The demo agencies' webhook receiver (``services/dev/webhooks.py``)."""
    partner_metrics_port: int = 8083
    """The partner API's /metrics (and probes) listener: never its public port."""
    broker_quick_start: bool = True
    """The broker's JIT with its quick compiler only (``QUICK_START`` in local_kafka.py): a start about
    twice as fast, less peak throughput. ``CIRCLES_BROKER_QUICK_START=false`` for the full JIT."""


@dataclass
class Managed:
    name: str
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | Forked | None = None
    restarts: list[float] = field(default_factory=list)

    def fork(self) -> None:
        """Start the process as a fork of this one, its modules already imported (``preload``): the child
        becomes what ``circles run <name>`` would be (own session, log file, environment, signals)."""
        from services.processes import PROCESSES

        out = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        nothing = os.open(os.devnull, os.O_RDONLY)
        try:
            self.popen = Forked(fork_into(PROCESSES[self.name], self.env, (nothing, out, out)))
        finally:
            os.close(out)
            os.close(nothing)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own entry point
                [sys.executable, "-m", "services.cli", "run", self.name],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)


class DevStack:
    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.data = settings.data_dir.resolve()
        self.broker: Any = None
        self.processes: list[Managed] = []
        self.mailbox: Any = None
        self.webhooks: WebhookReceiver | None = None
        self.credentials = Credentials.load(self.data / "credentials.json")
        self.took: dict[str, float] = {}
        """Seconds each step of the start took (``broker``, ``topics``, ``processes``, ``sample data``)."""

    def urls(self) -> dict[str, str]:
        s = self.settings
        return {
            "partner": f"http://127.0.0.1:{s.api_port}",
            "matching": f"http://127.0.0.1:{s.matching_api_port}",
            "coordinator": f"http://127.0.0.1:{s.web_port}",
            "volunteers": f"http://127.0.0.1:{s.volunteers_web_port}",
        }

    def start(self) -> str:
        """The broker, then the topics; the processes start at once beside the broker, forked from this
        process once it has imported their modules (``preload``), and wait at the start gate until the
        topics exist (``wait_for_start_gate``)."""
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "logs").mkdir(exist_ok=True)
        s = self.settings
        if s.kek is None and s.kek_file is None and not (self.data / "kek.json").exists():
            from services.protection.keks import add_kek  # a first start only

            add_kek(self.data / "kek.json")  # the processes' (and the CLI's) default key-encryption key file
        gate = self.data / START_GATE_FILE
        gate.unlink(missing_ok=True)  # left by a stack that was killed: shut until this one's topics exist
        began = time.monotonic()
        kafka = local_kafka()
        quick = kafka.QUICK_START if s.broker_quick_start else ()
        self.broker = kafka.LocalKafka(data_dir=self.data / "kafka", jvm_options=quick)
        bootstrap: str = self.broker.launch()
        env = {**self._environment(bootstrap), START_GATE: str(gate)}
        own = {"referrals-api": {"CIRCLES_HEALTH_PORT": str(s.partner_metrics_port)}}
        forking = preload()  # before any thread of this process (the mailbox's) starts
        for name in WORKERS + APIS:
            managed = Managed(name, self.data / "logs" / f"{name}.log", {**env, **own.get(name, {})})
            managed.fork() if forking else managed.start()  # a restart (below) starts afresh
            self.processes.append(managed)
        from services.dev.mailbox import Mailbox  # a development dependency
        from services.dev.webhooks import WebhookReceiver

        self.mailbox = Mailbox(self.data / "mail", self.settings.smtp_port, click.echo)
        self.mailbox.start()
        self.webhooks = WebhookReceiver(
            self.data / "webhooks", self.settings.webhook_port, self._webhook_secret, click.echo
        )
        self.webhooks.start()
        self.broker.wait(180)  # beside nine processes importing: slower than alone
        self.took["broker"] = time.monotonic() - began
        # What the `circles` commands run from this folder read to find the stack (stack_record.py).
        record = StackRecord(
            bootstrap_servers=bootstrap,
            pid=self.broker.pid,
            topic_prefix=s.topic_prefix,
            kek_file=s.kek_file.resolve() if s.kek_file else None,
            kek_inline=s.kek is not None,
            webhook_allow_loopback_http=True,  # as its processes (below): agencies' test receivers
            clock=self.clock(),
        )
        write_record(self.data, record)
        from schemas.topics import TOPICS  # imported after the broker's launch, as all that follows
        from services.runtime.kafka import create_topics

        began = time.monotonic()
        asyncio.run(create_topics(bootstrap, TOPICS, prefix=s.topic_prefix))
        self.took["topics"] = time.monotonic() - began
        gate.touch()
        began = time.monotonic()
        self._wait_until_ready()
        self.took["processes"] = time.monotonic() - began
        return bootstrap

    def clock(self) -> str:
        """``CIRCLES_CLOCK`` as the processes get it: a clock file's path made absolute, so that commands
        run from another folder read the same file."""
        setting = self.settings.clock
        if setting.startswith("file:"):
            return f"file:{Path(setting.removeprefix('file:')).expanduser().resolve()}"
        return setting

    def _webhook_secret(self, agency_id: str) -> str | None:
        secrets = self.credentials.values.get("webhook_secrets", {})
        return secrets.get(agency_id) if isinstance(secrets, dict) else None

    def _environment(self, bootstrap: str) -> dict[str, str]:
        urls = self.urls()
        s = self.settings
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CIRCLES_DATA_DIR": str(self.data),
            "CIRCLES_CLOCK": self.clock(),
            "CIRCLES_TOPIC_PREFIX": s.topic_prefix,
            "CIRCLES_API_PORT": str(s.api_port),
            "CIRCLES_MATCHING_API_PORT": str(s.matching_api_port),
            "CIRCLES_WEB_PORT": str(s.web_port),
            "CIRCLES_VOLUNTEERS_WEB_PORT": str(s.volunteers_web_port),
            "CIRCLES_MATCHING_API_URL": urls["matching"],
            "CIRCLES_PARTNER_API_URL": urls["partner"],
            "CIRCLES_COORDINATOR_URL": urls["coordinator"],
            "CIRCLES_PUBLIC_URL": urls["partner"],
            "CIRCLES_COORDINATOR_API_TOKEN": self.credentials.secret("coordinator_api_token"),
            "CIRCLES_SESSION_SECRET": self.credentials.secret("session_secret"),
            "CIRCLES_SMTP_HOST": "127.0.0.1",
            "CIRCLES_SMTP_PORT": str(s.smtp_port),
            "CIRCLES_COORDINATOR_EMAIL": COORDINATOR_EMAIL,
            "CIRCLES_SESSION_TIMEOUT_S": "10",
            "CIRCLES_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",  # agencies' test receivers on this machine
        }

    def _wait_until_ready(self, seconds: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        pending = {name: f"{url}/ready" for name, url in zip(APIS, self.urls().values(), strict=True)}
        # One client for every poll: a new one per request (``httpx.get``) builds an SSL context each time,
        # which cost this command seconds of CPU while the processes it waits for were starting.
        with httpx.Client(timeout=1, trust_env=False) as client:
            while pending and time.monotonic() < deadline:
                for name, url in list(pending.items()):
                    try:
                        if client.get(url).status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                self._restart_the_dead()
                time.sleep(0.1)
        if pending:
            raise click.ClickException(
                f"not ready after {seconds:.0f}s: {', '.join(pending)}; see {self.data}/logs/"
            )

    def _restart_the_dead(self) -> None:
        for managed in self.processes:
            code = managed.exited()
            if code is None:
                continue
            managed.restarts = [t for t in managed.restarts if time.monotonic() - t < 60] + [time.monotonic()]
            if len(managed.restarts) > 5:
                raise click.ClickException(f"{managed.name} keeps failing: see {managed.log}")
            click.echo(f"  {managed.name} exited with {code}; restarting it (log: {managed.log})")
            managed.start()

    def seed_once(self) -> None:
        marker = self.data / "seeded"
        if marker.exists():
            return
        from services.dev.seed import seed  # a first start only

        began = time.monotonic()
        urls = self.urls()
        done = asyncio.run(
            seed(
                self.settings.model_copy(
                    update={"kafka_bootstrap_servers": self.broker.bootstrap_servers, "data_dir": self.data}
                ),
                self.credentials,
                partner_api=urls["partner"],
                matching_api=urls["matching"],
                today=today_utc(),
                webhooks=self.webhooks.url if self.webhooks is not None else None,
            )
        )
        marker.write_text(json.dumps({"seeded_at": time.time()}))
        self.took["sample data"] = time.monotonic() - began
        for line in done:
            click.echo(f"  sample data: {line}")

    def summary(self, bootstrap: str) -> str:
        urls = self.urls()
        sample = self.data / "sample-referral.json"
        sample.write_text(json.dumps(sample_referral("DEMO-REFERENCE", today_utc()), indent=2) + "\n")
        keys = self.credentials.agencies
        mappa = keys.get("mappa-humberside", "<key>")
        lines = [
            "",
            f"Circles is running. Data in {self.data} (it survives a stop and start).",
            f"  Kafka broker       {bootstrap}   ({self._how_commands_find_it()})",
            f"  Partner API        {urls['partner']}   OpenAPI: {urls['partner']}/openapi.json",
            f"  Coordinator page   {urls['coordinator']}   sign in as coordinator / "
            f"{self.credentials.values.get('coordinator_password', '?')}",
            f"  Volunteers' page   {urls['volunteers']}   sign in as "
            f"{self.credentials.values.get('volunteer_id', '?')} / "
            f"{self.credentials.values.get('volunteer_password', '?')}",
            f"  Matching API       {urls['matching']}   (bearer token in {self.credentials.path})",
            f"  Emails             SMTP 127.0.0.1:{self.settings.smtp_port}, kept in {self.data / 'mail'}",
            f"  Agency webhooks    {self._webhooks_line()}",
            f"  Logs               {self.data / 'logs'}/<process>.log",
            *self._clock_lines(),
            "",
            "Demo agencies and their API keys (also in the credentials file, with their Kafka signing keys):",
            *(f"  {agency:<28} {key}" for agency, key in sorted(keys.items())),
            "",
            "Submit a referral as MAPPA (a new agency_reference each time):",
            f"  curl -s -X POST {urls['partner']}/v1/referrals -H 'Authorization: Bearer {mappa}' \\",
            "    -H 'Content-Type: application/json' \\",
            f'    -d "$(sed "s/DEMO-REFERENCE/DEMO-$(date +%s)/" {sample})"',
            "Then follow it (use the referral_id it returns):",
            f"  curl -s {urls['partner']}/v1/referrals/<referral_id> -H 'Authorization: Bearer {mappa}'",
            "",
            "Press Ctrl-C to stop everything.",
        ]
        return "\n".join(lines)

    def _clock_lines(self) -> list[str]:
        clock = self.clock()
        if not clock.startswith("file:"):
            return []
        path = clock.removeprefix("file:")
        return [
            f'  Clock              {clock}: "now" is the ISO time written there (the real time while '
            "there is none);",
            f"                     move it with: date -u -d '+3 days' +%FT%TZ > {path}",
        ]

    def _webhooks_line(self) -> str:
        url = f"http://127.0.0.1:{self.settings.webhook_port}"
        if not self.credentials.values.get("webhook_secrets"):
            return f"{url}   (none: the demo agencies were registered without webhook URLs)"
        return f"{url}/agencies/<agency id>, kept in {self.data / 'webhooks'} (list: curl -s {url}/)"

    def _how_commands_find_it(self) -> str:
        if self.data.name == LOCAL_DATA_DIR:
            return f"`circles` commands run in {self.data.parent} find it"
        return f"`circles` commands find it with CIRCLES_DATA_DIR={self.data}"

    def supervise(self) -> None:
        stop = {"now": False}

        def request_stop(*_: object) -> None:
            stop["now"] = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, request_stop)
        while not stop["now"]:
            self._restart_the_dead()
            time.sleep(0.5)

    def stop(self) -> None:
        for managed in reversed(self.processes):
            managed.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for managed in self.processes:
            while managed.exited() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            managed.signal(signal.SIGKILL)
        self.processes.clear()
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        if self.mailbox is not None:
            self.mailbox.stop()
            self.mailbox = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        (self.data / START_GATE_FILE).unlink(missing_ok=True)
        remove_record(self.data)


@click.group()
def dev() -> None:
    """Run the system on this machine (development and demonstration)."""


@dev.command()
@click.option("--no-seed", is_flag=True, help="Do not add the sample data on the first start")
def up(no_seed: bool) -> None:
    """Start everything in the foreground; Ctrl-C stops it all cleanly."""
    stack = DevStack(DevSettings())
    try:
        click.echo(f"Starting the broker, the topics and {len(WORKERS + APIS)} processes...")
        bootstrap = stack.start()
        if not no_seed:
            stack.seed_once()
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in stack.took.items())
        click.echo(f"Started: {steps}.")
        click.echo(stack.summary(bootstrap))
        stack.supervise()
    except local_kafka().KafkaSetupError as error:
        raise click.ClickException(str(error)) from None
    finally:
        click.echo("Stopping...")
        stack.stop()
        click.echo("Stopped.")
