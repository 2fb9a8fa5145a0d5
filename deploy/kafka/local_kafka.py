#!/usr/bin/env python3
"""A real single-node Apache Kafka broker (KRaft mode) from Maven Central jars, without Docker.

Used by the README run command, by the pytest fixture and by the fault tests. Standard library only,
so it runs before the project's virtual environment exists.

    python deploy/kafka/local_kafka.py fetch                      # jars into ~/.cache/circles/kafka-<version>
    python deploy/kafka/local_kafka.py start [--data-dir D]       # foreground until Ctrl-C, then a clean stop
    python deploy/kafka/local_kafka.py start --data-dir D --detach
    python deploy/kafka/local_kafka.py stop --data-dir D
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = os.environ.get("CIRCLES_KAFKA_VERSION", "4.1.2")
JVM_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]
INSTALL_HINT = (
    "install a Java 17+ runtime and Apache Maven "
    "(Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless maven), then run this again"
)


class KafkaSetupError(RuntimeError):
    """The broker could not be fetched or started; the message says what to do."""


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "circles" / f"kafka-{version}"


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise KafkaSetupError(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """Fetch the broker's classpath once with Maven; later calls are offline and instant."""
    folder = cache_dir(version)
    libs, complete = folder / "libs", folder / ".complete"
    if complete.exists():
        return libs
    require_tools("java", "mvn")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes fetching at once: the second waits
        if complete.exists():
            return libs
        partial = folder / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        command = [
            "mvn", "-q", "-B", "-f", str(HERE / "pom.xml"),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={partial}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(partial.glob(f"kafka_2.13-{version}.jar")):
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise KafkaSetupError(f"mvn could not fetch Apache Kafka {version} from Maven Central:\n{tail}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        complete.write_text(f"kafka {version}\n")
    return libs


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks.extend(chunk)
    return bytes(chunks)


def answers_metadata(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers a Kafka MetadataRequest (v4) listing at least one broker."""
    client_id = b"circles-local-kafka"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id  # api key 3 = Metadata, v4
    body = struct.pack(">i?", 0, False)  # no topics, no auto-creation
    request = header + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            response = _recv_exact(sock, size)
    except OSError:
        return False
    correlation_id, _throttle_ms, brokers = struct.unpack(">iii", response[:12])
    return bool(correlation_id == 1 and brokers >= 1)


def _die_with_parent() -> None:
    """Child-side: ask Linux to SIGTERM the broker if the process that started it dies (no orphan JVM)."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class LocalKafka:
    """One broker+controller node. With no data_dir it lives in a temporary folder removed on stop.

    Ports are chosen once (free loopback ports) and kept, so stop()/start() and kill()/start() bring
    the same broker back at the same address, as the fault tests need.
    """

    data_dir: Path | None = None
    port: int = 0
    controller_port: int = 0
    version: str = KAFKA_VERSION
    heap: str = "1g"
    die_with_parent: bool = True
    extra_properties: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_dir: bool = field(default=False, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 90.0) -> str:
        require_tools("java")
        libs = ensure_jars(self.version)
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="circles-kafka-"))
            self._owns_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        properties = self._write_properties()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format(libs, properties)
        command = [
            "java", f"-Xms{min_heap(self.heap)}", f"-Xmx{self.heap}", *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(properties),
        ]  # fmt: skip
        log = (self.data_dir / "broker.log").open("ab")
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if self.die_with_parent else os.setsid,
        )
        log.close()
        (self.data_dir / "broker.pid").write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout
        while not answers_metadata("127.0.0.1", self.port):
            if self._process.poll() is not None:
                raise KafkaSetupError(
                    f"the broker exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise KafkaSetupError(f"the broker did not answer within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)
        return self.bootstrap_servers

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL if it hangs; the temporary folder goes too."""
        self._signal(signal.SIGTERM)
        if not self._wait(timeout):
            self._signal(signal.SIGKILL)
            self._wait(10)
        self._process = None
        if self._owns_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, as a crashing machine would; data stays for a restart."""
        self._signal(signal.SIGKILL)
        self._wait(10)
        self._process = None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.data_dir is None or not (self.data_dir / "broker.log").exists():
            return ""
        return "\n".join((self.data_dir / "broker.log").read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _choose_ports(self) -> None:
        assert self.data_dir is not None
        saved = self.data_dir / "ports.json"
        if not self.port and saved.exists():
            ports = json.loads(saved.read_text())
            self.port, self.controller_port = ports["port"], ports["controller_port"]
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        saved.write_text(json.dumps({"port": self.port, "controller_port": self.controller_port}))

    def _write_properties(self) -> Path:
        assert self.data_dir is not None
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",  # topics come from the catalogue, never by accident
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "2000",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.cleaner.backoff.ms": "2000",
        }
        settings.update(self.extra_properties)
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _format(self, libs: Path, properties: Path) -> None:
        assert self.data_dir is not None
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = [
            "java", "-Xmx256m", f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
            "-t", cluster_id, "-c", str(properties),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaSetupError(f"formatting the KRaft store failed:\n{result.stdout}{result.stderr}")

    def _signal(self, sig: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)

    def _wait(self, timeout: float) -> bool:
        if self._process is None:
            return True
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def min_heap(heap: str) -> str:
    return "512m" if heap.endswith("g") else heap


def stop_detached(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a broker started with --detach, found by the pid file in its data folder."""
    pid_file = data_dir / "broker.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return state != "Z"
    return True


@contextlib.contextmanager
def running_broker(data_dir: Path | None = None) -> Iterator[LocalKafka]:
    broker = LocalKafka(data_dir=data_dir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the broker jars from Maven Central into the cache")
    start = sub.add_parser("start", help="start a broker and print its address")
    start.add_argument("--data-dir", type=Path, help="keep the broker's data here (default: a temp folder)")
    start.add_argument("--port", type=int, default=0)
    start.add_argument("--detach", action="store_true", help="leave the broker running and exit")
    stop = sub.add_parser("stop", help="stop a broker started with --detach")
    stop.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(f"Apache Kafka {KAFKA_VERSION} jars: {ensure_jars()}")
        elif args.command == "stop":
            print("stopped" if stop_detached(args.data_dir) else "no broker pid file in that folder")
        else:
            broker = LocalKafka(data_dir=args.data_dir, port=args.port, die_with_parent=not args.detach)
            broker.start()
            print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}  (pid {broker.pid})", flush=True)
            if not args.detach:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: sys.exit(0))
                try:
                    signal.pause()
                finally:
                    broker.stop()
                    print("broker stopped", flush=True)
    except KafkaSetupError as error:
        print(f"local_kafka: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
