"""The README run command in a fresh clone's folder (`make run`): everything starts, the printed curl submits
a referral whose decision, proposal and coordinator email can be seen within seconds; every `circles` command
run in that folder with no CIRCLES_*/KAFKA_* variables finds the running stack (its broker, its topic
prefix, its key-encryption key) and, once it has stopped, says where it looked; Ctrl-C stops every process;
a second start keeps the state."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "demo."
"""The stack runs under a topic prefix, so a command that did not take it from the stack would see nothing."""


def fresh_clone(into: Path) -> Path:
    """The repository's files as a clone of this working tree would have them (tracked and new, nothing
    ignored: no .circles, no caches), with this run's virtual environment as its .venv (building another
    takes minutes; `make -o .venv/.installed` below keeps make from reinstalling into it)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, target = ROOT / name, into / name
        if source.is_file():  # a tracked file deleted in the working tree is not there
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (into / ".venv").symlink_to(Path(sys.prefix))
    return into


def clean_environment() -> dict[str, str]:
    """This environment without any CIRCLES_*/KAFKA_* variable (nor an enclosing make's flags)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CIRCLES_", "KAFKA_")) and name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    }


def start(folder: Path, ports: dict[str, int]) -> tuple[subprocess.Popen[str], list[str]]:
    """`make run` in ``folder``, on free ports (8080-8082 may be taken on a shared machine)."""
    env = {
        **clean_environment(),
        "CIRCLES_API_PORT": str(ports["api"]),
        "CIRCLES_MATCHING_API_PORT": str(ports["matching"]),
        "CIRCLES_WEB_PORT": str(ports["web"]),
        "CIRCLES_VOLUNTEERS_WEB_PORT": str(ports["volunteers"]),
        "CIRCLES_SMTP_PORT": str(ports["smtp"]),
        "CIRCLES_WEBHOOK_PORT": str(ports["webhooks"]),
        "CIRCLES_PARTNER_METRICS_PORT": str(ports["metrics"]),  # the partner API's /metrics listener
        "CIRCLES_TOPIC_PREFIX": PREFIX,
    }
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
        cwd=folder,
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
    pytest.fail("".join(lines) + interrupt(process))  # not ready: stop what did start, on a shared machine


def circles(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `circles` command in ``folder`` with no CIRCLES_*/KAFKA_* variables, as a user types it."""
    return subprocess.run(
        [str(folder / ".venv" / "bin" / "circles"), *args],
        cwd=folder,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def interrupt(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a terminal sends it: SIGINT to make and `circles dev up` (make then exits "Interrupt");
    the rest of the output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0]


def stop(process: subprocess.Popen[str]) -> str:
    output = interrupt(process)
    assert "Stopped." in output, output
    return output


def descendants_alive(pids: list[int]) -> list[int]:
    return [
        pid
        for pid in pids
        if Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    ]


def descendants_of(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


def test_run_command_runs_everything_the_cli_finds_it_and_state_survives(tmp_path: Path) -> None:
    folder = fresh_clone(tmp_path / "circles")
    ports = {
        name: free_port() for name in ("api", "matching", "web", "volunteers", "metrics", "smtp", "webhooks")
    }
    process, lines = start(folder, ports)
    text = "".join(lines)
    children = descendants_of(process.pid)
    try:
        assert "sample data: 10 sample referrals submitted through the partner API" in text
        assert "Coordinator page" in text and f"`circles` commands run in {folder} find it" in text
        curl = re.search(r"  (curl -s -X POST .*?)\nThen", text, re.S)
        assert curl, text
        command = curl.group(1).replace("\\\n", " ")
        submitted = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True, cwd=folder
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
        mail = folder / ".circles" / "mail"
        while not any(referral["referral_id"] in p.read_text(errors="replace") for p in mail.glob("*.eml")):
            assert time.monotonic() - started < 20, "no email to the coordinator"
            time.sleep(0.2)
        seconds = time.monotonic() - started
        print(f"\nrun command: decision, proposal and the coordinator's email within {seconds:.1f}s")
        the_agency_webhooks_are_received_and_signed(folder, ports, referral["referral_id"])
        the_cli_finds_the_running_stack(folder, ports, referral["referral_id"])
        the_sample_circles_are_there(folder, ports, text)
    finally:
        stop(process)
    assert descendants_alive(children) == [], "processes left running after Ctrl-C"
    stopped = circles(folder, "agency", "list")
    assert stopped.returncode == 1 and len(stopped.stderr.strip().splitlines()) == 1, stopped.stderr
    assert f"{folder / '.circles'} (the nearest .circles) has no broker.json" in stopped.stderr

    again, lines = start(folder, ports)  # the same data directory: state kept, no second seeding
    try:
        assert "sample data" not in "".join(lines)
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            assert client.get(referral["links"]["self"]).json()["status"] == "proposed"
    finally:
        stop(again)


def the_agency_webhooks_are_received_and_signed(folder: Path, ports: dict[str, int], referral: str) -> None:
    """The stack's webhook receiver (a demo agency's system): MAPPA's webhooks about the referral arrive,
    each kept with its signature checked against MAPPA's secret, and `GET /` lists them."""
    deadline = time.monotonic() + 30
    while True:
        listed = httpx.get(f"http://127.0.0.1:{ports['webhooks']}/", timeout=10).json()
        mine = {r["event_type"]: r for r in listed if r["referral_id"] == referral}
        if {"referral_received", "decision_made"} <= set(mine):
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    assert {(r["agency_id"], r["signature"]) for r in mine.values()} == {("mappa-humberside", "valid")}
    kept = json.loads((folder / ".circles" / "webhooks" / mine["decision_made"]["file"]).read_text())
    assert kept["headers"]["X-Circles-Signature"].startswith("t=") and kept["body"]["status"] == "eligible"


def the_sample_circles_are_there(folder: Path, ports: dict[str, int], text: str) -> None:
    """Issue 11, item 9: an active circle with meetings, overdue minutes and an open concern, an ended one,
    and the volunteers' page account the summary prints, which signs in."""
    assert "sample data: sample circles:" in text and "a volunteers' page account for" in text, text
    listed = circles(folder, "circle", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    active = [r for r in rows if r["status"] == "active"]
    assert any(
        r["meetings_held"] >= 1 and r["minutes_overdue"] >= 1 and r["open_concerns"] >= 1 for r in active
    )
    assert [r["outcome"] for r in rows if r["status"] == "ended"] == ["ended_early"]
    account = re.search(r"Volunteers' page +(http://\S+) +sign in as (\S+) / (\S+)", text)
    assert account, text
    signed_in = httpx.post(
        f"{account.group(1)}/sign-in",
        data={"account": account.group(2), "password": account.group(3)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/circles", signed_in.text


def the_cli_finds_the_running_stack(folder: Path, ports: dict[str, int], referral_id: str) -> None:
    """Commands that write (an agency, through the broker under the stack's prefix, that the partner API then
    accepts), read sealed state (the volunteers: the stack's KEK) and watch the pipeline, with no exports."""
    added = circles(folder, "agency", "add", "cli-test-agency", "--name", "CLI Test Agency", "--json")
    assert added.returncode == 0, added.stderr
    api_key = json.loads(added.stdout)["api_key"]
    deadline = time.monotonic() + 30
    while (
        httpx.get(
            f"http://127.0.0.1:{ports['api']}/v1/referrals", headers={"Authorization": f"Bearer {api_key}"}
        ).status_code
        != 200
    ):
        assert time.monotonic() < deadline, "the partner API never accepted the key the CLI made"
        time.sleep(0.2)
    # the partner API's /metrics on its own listener only; a webhook to this host is allowed here (dev stack)
    assert httpx.get(f"http://127.0.0.1:{ports['api']}/metrics").status_code == 404
    assert "circles_http_requests" in httpx.get(f"http://127.0.0.1:{ports['metrics']}/metrics").text
    hooked = circles(
        folder, "agency", "add", "hook-agency", "--name", "Hook", "--webhook-url", "http://127.0.0.1:9/h"
    )
    assert hooked.returncode == 0, hooked.stderr

    volunteers = circles(folder, "volunteer", "list", "--json")
    assert volunteers.returncode == 0, volunteers.stderr
    assert len([v for v in json.loads(volunteers.stdout) if v["volunteer_id"].startswith("vol-")]) == 40

    proposals = circles(folder, "proposal", "list", "--status", "open", "--json")
    assert proposals.returncode == 0, proposals.stderr
    assert referral_id in {proposal["referral_id"] for proposal in json.loads(proposals.stdout)}

    check = circles(folder, "ops", "status", "--check", "--interval", "3")
    assert check.returncode == 0 and check.stdout.startswith("OK: "), check.stdout + check.stderr
