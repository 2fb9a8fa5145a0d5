"""The README run command: a broker answering on the printed address; Ctrl-C leaves no process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kafka_broker import local_kafka

pytestmark = pytest.mark.integration
CIRCLES = Path(sys.executable).parent / "circles"


def _start(data_dir: Path) -> tuple[subprocess.Popen[str], str, int, str]:
    env = {**os.environ, "CIRCLES_DATA_DIR": str(data_dir)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    process = subprocess.Popen(
        [str(CIRCLES), "dev", "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
        if process.poll() is not None:
            pytest.fail("".join(lines))
    found = re.search(r"KRaft\): (127\.0\.0\.1:\d+)\s+pid (\d+)", "".join(lines))
    assert found, "".join(lines)
    return process, found.group(1), int(found.group(2)), "".join(lines)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_run_command_serves_a_broker_and_stops_cleanly_keeping_state(tmp_path: Path) -> None:
    process, bootstrap, jvm, first = _start(tmp_path)
    assert "created now" in first
    host, port = bootstrap.split(":")
    try:
        assert local_kafka.answers_metadata(host, int(port))
        assert b"kafka.Kafka" in Path(f"/proc/{jvm}/cmdline").read_bytes()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Stopped." in output
    assert not _alive(jvm)
    assert not local_kafka.answers_metadata(host, int(port))

    again, bootstrap_again, jvm_again, second = _start(
        tmp_path
    )  # same data directory: same broker and topics
    try:
        assert bootstrap_again == bootstrap
        assert "(0 created now)" in second
    finally:
        again.send_signal(signal.SIGINT)
        output, _ = again.communicate(timeout=60)
    assert not _alive(jvm_again)
