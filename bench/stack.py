"""The system under test: every process of ``services/processes.py`` for one topic prefix on the benchmark's
broker, with the demo agencies registered and the notifications going to the local SMTP sink.

Settings are the services' defaults (commit interval, session timeout, batch size, log level info), not
the tests' quicker ones; only addresses, ports, the coordinator's mailbox and the key-encryption key are
given. Every process gets the same KEK file (``<data dir>/kek.json``, made on first use), as a deployment's
processes share one; ``sealer()`` gives the driver the same data keys, to publish what a service would
publish (personal fields sealed) and to open what the services sealed.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

from schemas.topics import TOPICS
from services.processes import PROCESSES, WORKERS
from services.protection.keks import add_kek
from services.protection.sealer import Sealer, build_sealer
from services.referrals.agencies import register_agency
from services.referrals.demo import DEMO_AGENCIES
from services.runtime.kafka import create_topics
from services.runtime.settings import RuntimeSettings
from tests.processes import ServiceProcess, free_port

APIS = ("referrals-api", "matching-api", "coordinator-web")
COORDINATOR_EMAIL = "coordinator@humbercare.example.org"


class BenchProcess(ServiceProcess):
    """A service process whose log goes to the benchmark's log folder."""

    def __init__(self, process: str, env: dict[str, str], logs: Path) -> None:
        super().__init__(process, env)
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{env['CIRCLES_TOPIC_PREFIX'].strip('.')}-{process}.log"

    def wait_until_ready(self, seconds: float = 120.0) -> None:
        if "CIRCLES_HEALTH_PORT" in self.env:
            self.wait_http(f"http://127.0.0.1:{self.env['CIRCLES_HEALTH_PORT']}/ready", seconds)
        else:
            self.wait_for_log("worker_ready", seconds)


class Stack:
    def __init__(self, bootstrap: str, prefix: str, data_dir: Path, logs: Path, smtp_port: int) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.data_dir = data_dir
        self.logs = logs
        self.smtp_port = smtp_port
        self.ports = {"api": free_port(), "matching": free_port(), "web": free_port()}
        self.processes: dict[str, BenchProcess] = {}
        self.api_keys: dict[str, str] = {}
        """Agency id -> its partner API key (the demo agencies, after ``prepare``)."""
        self.kek_file = data_dir / "kek.json"
        self.signing_keys: dict[str, str] = {}
        """Each demo agency's Kafka signing key, once ``prepare`` has registered them."""
        if not self.kek_file.exists():
            add_kek(self.kek_file, "bench")

    async def prepare(self) -> None:
        """The catalogue's topics under the prefix, and the demo agencies (email contacts)."""
        await create_topics(self.bootstrap, TOPICS, prefix=self.prefix)
        for agency in DEMO_AGENCIES:
            credentials = await register_agency(
                self.bootstrap,
                agency.agency_id,
                name=agency.name,
                kind=agency.kind,
                local_authorities=list(agency.areas),
                contact_email=agency.contact_email,
                prefix=self.prefix,
            )
            self.api_keys[agency.agency_id] = credentials.api_key
            self.signing_keys[agency.agency_id] = credentials.kafka_signing_key

    def env(self, process: str) -> dict[str, str]:
        partner = f"http://127.0.0.1:{self.ports['api']}"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CIRCLES_TOPIC_PREFIX": self.prefix,
            "CIRCLES_DATA_DIR": str(self.data_dir),
            "CIRCLES_KEK_FILE": str(self.kek_file),
            "CIRCLES_API_PORT": str(self.ports["api"]),
            "CIRCLES_MATCHING_API_PORT": str(self.ports["matching"]),
            "CIRCLES_WEB_PORT": str(self.ports["web"]),
            "CIRCLES_MATCHING_API_URL": f"http://127.0.0.1:{self.ports['matching']}",
            "CIRCLES_PARTNER_API_URL": partner,
            "CIRCLES_PUBLIC_URL": partner,
            "CIRCLES_COORDINATOR_URL": f"http://127.0.0.1:{self.ports['web']}",
            "CIRCLES_COORDINATOR_API_TOKEN": "bench-token-" + self.prefix,
            "CIRCLES_SESSION_SECRET": secrets.token_hex(16),
            "CIRCLES_SMTP_HOST": "127.0.0.1",
            "CIRCLES_SMTP_PORT": str(self.smtp_port),
            "CIRCLES_COORDINATOR_EMAIL": COORDINATOR_EMAIL,
            # no per-agency rate limit: it would measure itself (a burst of 60), not the partner API
            "CIRCLES_RATE_LIMIT_PER_MINUTE": "0",
        }
        if process in WORKERS:
            env["CIRCLES_HEALTH_PORT"] = str(free_port())
        return env

    def sealer(self, kinds: list[str]) -> Sealer:
        """The data keys of ``kinds`` (``referral``, ``volunteer``...) as the services see them (their KEK,
        their keys topics), as ``tests.processes.sealer_for`` gives a test; not started yet."""
        settings = RuntimeSettings(
            kafka_bootstrap_servers=self.bootstrap, topic_prefix=self.prefix, kek_file=self.kek_file
        )
        return build_sealer(settings, kinds, client_id="bench-keys")

    def start(self, names: tuple[str, ...] = WORKERS + APIS) -> None:
        for name in names:
            assert name in PROCESSES, name
            process = BenchProcess(name, self.env(name), self.logs)
            process.start()
            self.processes[name] = process

    def wait_until_ready(self, seconds: float = 180.0) -> None:
        urls = {"referrals-api": "api", "matching-api": "matching", "coordinator-web": "web"}
        for name, process in self.processes.items():
            if name in urls:
                process.wait_http(f"http://127.0.0.1:{self.ports[urls[name]]}/ready", seconds)
            else:
                process.wait_until_ready(seconds)

    def stop(self) -> None:
        for process in self.processes.values():
            process._signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            process._wait(max(0.1, deadline - time.monotonic()))
            process.kill()
        self.processes.clear()

    def alive(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.alive()]
