"""Real service processes for integration tests: ``circles run <process>`` with its own environment.

Every process's output goes to a log file under ``test-artifacts/logs/``; the session checks all of them
for the synthetic personal values the tests submit (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel

from schemas.topics import SUBJECT_KEYS
from services.protection.keks import add_kek
from services.protection.sealer import Sealer, build_sealer
from services.runtime.kafka import Publisher, read_compacted
from services.runtime.settings import RuntimeSettings
from tests import forkserver
from tests.forkserver import ForkedProcess, fork_server

M = TypeVar("M", bound=BaseModel)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
LOGS = ARTIFACTS / "logs"
CIRCLES = Path(sys.executable).parent / "circles"


LISTEN_PORTS = range(20_000, 32_000)
"""Where the tests' processes listen: below the kernel's ephemeral range (32768-60999 here), from which
every bind to port 0 (a worker's probe server without a set port) and every outgoing connection takes its
port. A port chosen by binding to 0 was free only until the next such bind: a worker's probe took the
coordinator page's port in the moment before the page bound it."""
_handed_out: set[int] = set()


def free_port() -> int:
    """A port for a test's process to listen on: free now, in this pytest worker's own slice of
    ``LISTEN_PORTS`` (xdist workers never share one), and never handed out before in this run."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = len(LISTEN_PORTS) // workers
    ports = LISTEN_PORTS[worker * size : (worker + 1) * size]
    for port in random.sample(ports, len(ports)):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {ports}")


def service_env(bootstrap: str, prefix: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a test's processes: its broker, its topic prefix, its key-encryption key, quick
    timeouts, no rate limit."""
    kek_file = data_dir / "kek.json"
    if not kek_file.exists():
        add_kek(kek_file, "test")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CIRCLES_TOPIC_PREFIX": prefix,
        "CIRCLES_DATA_DIR": str(data_dir),
        "CIRCLES_KEK_FILE": str(kek_file),
        "CIRCLES_SESSION_TIMEOUT_S": "6",
        "CIRCLES_COMMIT_INTERVAL_S": "0.5",
        "CIRCLES_LOG_LEVEL": "info",
        "CIRCLES_RATE_LIMIT_PER_MINUTE": "0",  # tests poll the API and load it; limits have unit tests
        "CIRCLES_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",  # the tests' webhook receivers, as under `make run`
    }
    env.update(extra)
    return env


class ServiceProcess:
    def __init__(self, process: str, env: dict[str, str], name: str | None = None) -> None:
        self.process = process
        self.env = env
        self.name = name or process
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{env.get('CIRCLES_TOPIC_PREFIX', '').strip('.')}-{self.name}.log"
        self.popen: ForkedProcess | None = None
        self.starts = 0

    def start(self) -> ServiceProcess:
        """``circles run <process>``, forked from the fork server (``tests/forkserver.py``)."""
        log = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        nothing = os.open(os.devnull, os.O_RDONLY)
        try:
            self.popen = fork_server().spawn(["run", self.process], self.env, (nothing, log, log))
        finally:
            os.close(log)
            os.close(nothing)
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, seconds: float = 60.0, occurrences: int = 1) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.logs().count(text) >= occurrences:
                return
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited ({self.popen and self.popen.returncode}):\n{self.tail()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no {text!r} within {seconds}s:\n{self.tail()}")

    def wait_http(self, url: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {url} not ready within {seconds}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self._signal(signal.SIGKILL)
        self._wait(10)

    def stop(self, seconds: float = 30.0) -> None:
        self._signal(signal.SIGTERM)
        if not self._wait(seconds):
            self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def _wait(self, seconds: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


def run_cli(
    env: dict[str, str], *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``circles <args>``, forked from the fork server, its output captured."""
    result = forkserver.run(args, env, input=input)
    if check and result.returncode != 0:
        raise AssertionError(
            f"circles {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def sealer_for(env: dict[str, str], kinds: list[str]) -> Sealer:
    """The data keys a test's processes use (their KEK file and keys topics), to open what they sealed."""
    settings = RuntimeSettings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=env["CIRCLES_TOPIC_PREFIX"],
        kek_file=Path(env["CIRCLES_KEK_FILE"]),
    )
    return build_sealer(settings, kinds, client_id="tests-keys")


@asynccontextmanager
async def sealing_publisher(env: dict[str, str], source: str) -> AsyncIterator[Publisher]:
    """A publisher as a service has one: personal fields sealed with the test's data keys."""
    sealer = sealer_for(env, list(SUBJECT_KEYS))
    await sealer.start()
    try:
        async with Publisher(
            env["KAFKA_BOOTSTRAP_SERVERS"], source, prefix=env["CIRCLES_TOPIC_PREFIX"], sealer=sealer
        ) as publisher:
            yield publisher
    finally:
        await sealer.stop()


async def read_sealed_table(env: dict[str, str], topic: str, model: type[M]) -> dict[str, M]:
    """A changelog with sealed personal fields, read whole and opened (as its service's API would)."""
    sealer = sealer_for(env, list(SUBJECT_KEYS))
    await sealer.start()
    try:
        full = env["CIRCLES_TOPIC_PREFIX"] + topic
        return await read_compacted(env["KAFKA_BOOTSTRAP_SERVERS"], full, sealer.parser(model), sealer=sealer)
    finally:
        await sealer.stop()
