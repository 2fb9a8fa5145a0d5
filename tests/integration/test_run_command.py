"""The README run command (`circles dev up`): everything starts, the printed curl submits a referral whose
decision, proposal and coordinator email can be seen within seconds; Ctrl-C stops every process; a second
start keeps the state."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

pytestmark = pytest.mark.integration
CIRCLES = Path(sys.executable).parent / "circles"


def start(data_dir: Path, ports: dict[str, int]) -> tuple[subprocess.Popen[str], list[str]]:
    env = {
        **os.environ,
        "CIRCLES_DATA_DIR": str(data_dir),
        "CIRCLES_API_PORT": str(ports["api"]),
        "CIRCLES_MATCHING_API_PORT": str(ports["matching"]),
        "CIRCLES_WEB_PORT": str(ports["web"]),
        "CIRCLES_SMTP_PORT": str(ports["smtp"]),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    process = subprocess.Popen(
        [str(CIRCLES), "dev", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            return process, lines
        if process.poll() is not None:
            break
    pytest.fail("".join(lines))


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    return output


def descendants_alive(pids: list[int]) -> list[int]:
    return [
        pid
        for pid in pids
        if Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    ]


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if int(fields[3]) == pid:
            found.append(int(fields[0]))
    return found


def test_run_command_runs_everything_the_printed_curl_works_and_state_survives(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("api", "matching", "web", "smtp")}
    process, lines = start(tmp_path, ports)
    text = "".join(lines)
    children = children_of(process.pid)
    try:
        assert "sample data: 10 sample referrals submitted through the partner API" in text
        assert "Coordinator page" in text and "Kafka broker" in text
        curl = re.search(r"  (curl -s -X POST .*?)\nThen", text, re.S)
        assert curl, text
        command = curl.group(1).replace("\\\n", " ")
        submitted = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
        )
        referral = json.loads(submitted.stdout)
        assert referral["status"] == "received"
        key = re.search(r"Bearer (ck_[A-Za-z0-9_-]+)", command).group(1)  # type: ignore[union-attr]
        started = time.monotonic()
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            while True:
                view = client.get(referral["links"]["self"]).json()
                if view["status"] == "proposed":
                    break
                assert time.monotonic() - started < 20, view
                time.sleep(0.2)
        assert view["decision"]["outcome"] == "eligible"
        mail = tmp_path / "mail"
        while not any(referral["referral_id"] in p.read_text(errors="replace") for p in mail.glob("*.eml")):
            assert time.monotonic() - started < 20, "no email to the coordinator"
            time.sleep(0.2)
        seconds = time.monotonic() - started
        print(f"\nrun command: decision, proposal and the coordinator's email within {seconds:.1f}s")
    finally:
        output = stop(process)
    assert "Stopped." in output
    assert descendants_alive(children) == [], "processes left running after Ctrl-C"

    again, lines = start(tmp_path, ports)  # the same data directory: state kept, no second seeding
    try:
        assert "sample data" not in "".join(lines)
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            assert client.get(referral["links"]["self"]).json()["status"] == "proposed"
    finally:
        stop(again)
