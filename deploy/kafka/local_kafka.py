#!/usr/bin/env python3
"""A real single-node Apache Kafka broker (KRaft mode) from Maven Central jars, without Docker.

Used by the README run command, by the pytest fixture and by the fault tests. Standard library only,
so it runs before the project's virtual environment exists.

    python deploy/kafka/local_kafka.py fetch                      # jars into ~/.cache/circles/kafka-<version>
    python deploy/kafka/local_kafka.py start [--data-dir D]       # foreground until Ctrl-C, then a clean stop
    python deploy/kafka/local_kafka.py start --data-dir D --detach
    python deploy/kafka/local_kafka.py stop --data-dir D
    python deploy/kafka/local_kafka.py start --secure [--data-dir D]   # TLS + SASL/SCRAM + ACL authorizer

``--secure`` (``LocalKafka(secure=True)``) generates a throwaway CA and broker certificate with the JDK's
``keytool`` (so this stays standard-library Python), formats the store with SCRAM-SHA-512 credentials for an
admin super-user and one user per service, and serves clients on a SASL_SSL listener only, with the
StandardAuthorizer denying whatever no ACL allows. The CA file and the credentials are in
``<data-dir>/security.json`` (mode 0600); a fresh data dir gets fresh passwords.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
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
QUICK_START = ("-XX:TieredStopAtLevel=1",)
"""JIT with the quick compiler only: about half the CPU a broker's start takes (C2's compiling was about
half of it: docs/benchmarks.md), for less peak throughput. For the development stack's start
(``circles dev up``), never the tests' or the benchmarks' brokers."""
INSTALL_HINT = (
    "install a Java 17+ runtime and Apache Maven "
    "(Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless maven), then run this again"
)


ADMIN_USER = "circles-admin"
"""The secure broker's super-user: inter-broker and controller traffic, topic creation, ACLs."""
SERVICE_USERS = (
    "circles-referrals",
    "circles-matching",
    "circles-notifications",
    "circles-coordinator",
    "circles-circles",
    "circles-partner-agencies",
    "circles-ops",
)
"""One SCRAM user per principal of the ACLs (``services/security/acls.py``; a unit test keeps both equal)."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
CERT_DAYS = 365


SINGLE_NODE_SETTINGS = {
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
"""A single node's broker settings other than its listeners and folders (also what the tests give a broker in
a container, ``tests/kafka_broker.py``)."""


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


def answers_over_tls(host: str, port: int, ca_file: Path, timeout: float = 2.0) -> bool:
    """True when a TLS listener whose certificate ``ca_file`` vouches for answers an ApiVersions request
    (which a SASL listener takes before authentication)."""
    client_id = b"circles-local-kafka"
    request = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id  # api key 18 = ApiVersions, v0
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            response = _recv_exact(sock, size)
    except (OSError, ConnectionError):
        return False
    correlation_id, error_code = struct.unpack(">ih", response[:6])
    return bool(correlation_id == 7 and error_code == 0)


KEYTOOL_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
"""keytool's JVM with the quick compiler only and one GC thread: a certificate step takes half the time and
a third of the CPU (each is a JVM start that runs for well under a second)."""


def _keytool(*args: str) -> None:
    result = subprocess.run(["keytool", *KEYTOOL_JVM, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaSetupError(f"keytool {args[0]} failed:\n{result.stdout}{result.stderr}")


def make_certificates(
    folder: Path,
    store_password: str,
    days: int = CERT_DAYS,
    names: tuple[str, ...] = ("ip:127.0.0.1", "dns:localhost"),
) -> dict[str, str]:
    """A throwaway CA and a broker certificate for ``names`` (keytool SAN entries: 127.0.0.1 and localhost
    unless told), signed by it (EC P-256).

    Returns the files: ``ca_file`` (PEM, for clients), ``keystore`` (PKCS12: the broker's key and chain) and
    ``truststore`` (PKCS12: the CA, for the broker as a client of itself)."""
    require_tools("keytool")
    folder.mkdir(parents=True, exist_ok=True)
    ca_store, ca_pem = folder / "ca.p12", folder / "ca.pem"
    keystore, truststore = folder / "broker.p12", folder / "truststore.p12"
    csr, signed = folder / "broker.csr", folder / "broker.pem"
    for path in (ca_store, ca_pem, keystore, truststore, csr, signed):
        path.unlink(missing_ok=True)
    store = ["-storetype", "PKCS12", "-storepass", store_password]
    key = ["-keyalg", "EC", "-groupname", "secp256r1", "-validity", str(days)]
    _keytool(
        "-genkeypair", "-alias", "ca", "-dname", "CN=Circles local test CA", *key,
        "-ext", "bc:c=ca:true", "-ext", "KeyUsage:c=keyCertSign,cRLSign", "-keystore", str(ca_store), *store,
    )  # fmt: skip
    _keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), *store, "-file", str(ca_pem))
    _keytool(
        "-genkeypair", "-alias", "broker", "-dname", "CN=localhost", *key, "-keystore", str(keystore), *store
    )  # fmt: skip
    _keytool("-certreq", "-alias", "broker", "-keystore", str(keystore), *store, "-file", str(csr))
    _keytool(
        "-gencert", "-alias", "ca", "-keystore", str(ca_store), *store, "-infile", str(csr),
        "-outfile", str(signed), "-rfc", "-validity", str(days),
        "-ext", f"SAN={','.join(names)}", "-ext", "KeyUsage:c=digitalSignature",
        "-ext", "ExtendedKeyUsage=serverAuth,clientAuth",
    )  # fmt: skip
    _keytool(
        "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca_pem), "-keystore", str(keystore), *store
    )  # fmt: skip
    _keytool("-importcert", "-alias", "broker", "-file", str(signed), "-keystore", str(keystore), *store)
    _keytool(
        "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca_pem), "-keystore", str(truststore), *store
    )  # fmt: skip
    for path in (csr, signed):
        path.unlink()
    ca_store.unlink()  # the CA's key is not needed again: nobody can sign another certificate with it
    return {"ca_file": str(ca_pem), "keystore": str(keystore), "truststore": str(truststore)}


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


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
    secure: bool = False
    """TLS + SASL/SCRAM on the client listener, ACLs enforced (see the module docstring)."""
    users: tuple[str, ...] = SERVICE_USERS
    jvm_options: tuple[str, ...] = ()
    """More JVM options, after ``JVM_OPTIONS`` (``circles dev up`` passes ``QUICK_START``)."""
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_dir: bool = field(default=False, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def security_file(self) -> Path:
        assert self.data_dir is not None, "the broker has no data dir before start()"
        return self.data_dir / "security.json"

    def security(self) -> dict[str, object]:
        """The secure broker's connection facts: ``security_protocol``, ``sasl_mechanism``, ``ca_file``,
        ``admin`` (``username``, ``password``) and ``users`` (user → password)."""
        loaded: dict[str, object] = json.loads(self.security_file.read_text())
        return loaded

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker and return its address once it answers (``launch()`` then ``wait()``)."""
        self.launch()
        return self.wait(timeout)

    def launch(self) -> str:
        """Start the broker's process and return the address it will answer at, without waiting for it
        (``wait()``): what else needs starting can start meanwhile."""
        require_tools("java")
        libs = ensure_jars(self.version)
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="circles-kafka-"))
            self._owns_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        if self.secure:
            self._prepare_security(formatted)
        elif formatted and self.security_file.exists():
            raise KafkaSetupError(f"{self.data_dir} holds a secure broker: start it with --secure")
        properties = self._write_properties()
        if not formatted:
            self._format(libs, properties)
        command = [
            "java", f"-Xms{min_heap(self.heap)}", f"-Xmx{self.heap}", *JVM_OPTIONS, *self.jvm_options,
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
        return self.bootstrap_servers

    def wait(self, timeout: float = 90.0) -> str:
        """Return the address once the launched broker answers; ``KafkaSetupError`` if it exits first or
        does not answer within ``timeout`` (then it is killed)."""
        assert self._process is not None, "launch() the broker first"
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise KafkaSetupError(
                    f"the broker exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise KafkaSetupError(f"the broker did not answer within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)
        return self.bootstrap_servers

    def _answers(self) -> bool:
        if self.secure:
            return answers_over_tls("127.0.0.1", self.port, Path(str(self.security()["ca_file"])))
        return answers_metadata("127.0.0.1", self.port)

    def _prepare_security(self, formatted: bool) -> None:
        """Certificates and passwords: made once per data dir, kept for restarts."""
        assert self.data_dir is not None
        if self.security_file.exists():
            facts = self.security()
        elif formatted:
            raise KafkaSetupError(f"{self.data_dir} holds a broker formatted without --secure")
        else:
            store_password = secrets.token_urlsafe(18)
            files = make_certificates(self.data_dir / "tls", store_password)
            facts = {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": SCRAM_MECHANISM,
                **files,
                "store_password": store_password,
                "admin": {"username": ADMIN_USER, "password": secrets.token_urlsafe(24)},
                "users": {user: secrets.token_urlsafe(24) for user in self.users},
            }
        facts["bootstrap_servers"] = self.bootstrap_servers
        _write_private(self.security_file, json.dumps(facts, indent=2) + "\n")

    def _secure_properties(self) -> dict[str, str]:
        facts = self.security()
        admin = facts["admin"]
        assert isinstance(admin, dict)
        user, password = admin["username"], admin["password"]
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        store = str(facts["store_password"])
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "SASL_SSL",
            # The controller listener is loopback-only; SCRAM cannot serve it (its credentials live in the
            # metadata the controller serves), so the broker signs in there with PLAIN as the admin.
            "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                f'{plain} required username="{user}" password="{password}" user_{user}="{password}";'
            ),
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                f'{scram} required username="{user}" password="{password}";'
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(facts["keystore"]),
            "ssl.keystore.password": store,
            "ssl.key.password": store,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(facts["truststore"]),
            "ssl.truststore.password": store,
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{user}",
        }

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
            **SINGLE_NODE_SETTINGS,
        }
        if self.secure:
            settings.update(self._secure_properties())
        settings.update(self.extra_properties)
        path = self.data_dir / "server.properties"
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        if self.secure:
            _write_private(path, text)  # it holds the admin's and the keystore's passwords
        else:
            path.write_text(text)
        return path

    def _format(self, libs: Path, properties: Path) -> None:
        assert self.data_dir is not None
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = [
            "java", "-Xmx256m", f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
            f"--cluster-id={cluster_id}", "-c", str(properties),  # an id may begin with "-"
        ]  # fmt: skip
        if self.secure:
            facts = self.security()
            admin, users = facts["admin"], facts["users"]
            assert isinstance(admin, dict) and isinstance(users, dict)
            for name, password in [(admin["username"], admin["password"]), *users.items()]:
                command += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
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
    start.add_argument(
        "--secure", action="store_true", help="TLS, SASL/SCRAM, ACLs (see <data-dir>/security.json)"
    )
    stop = sub.add_parser("stop", help="stop a broker started with --detach")
    stop.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(f"Apache Kafka {KAFKA_VERSION} jars: {ensure_jars()}")
        elif args.command == "stop":
            print("stopped" if stop_detached(args.data_dir) else "no broker pid file in that folder")
        else:
            broker = LocalKafka(
                data_dir=args.data_dir, port=args.port, die_with_parent=not args.detach, secure=args.secure
            )
            broker.start()
            print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}  (pid {broker.pid})", flush=True)
            if args.secure:
                print(f"SASL_SSL; CA file and credentials in {broker.security_file}", flush=True)
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
