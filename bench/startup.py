"""Starting things (issue 13): ``circles --help``, and ``circles dev up`` (what ``make run`` runs) started a
second time on the data it kept, until it prints that it is running.

* ``circles --help``: the installed command in a fresh process, wall time, beside ``python -c pass`` (the
  interpreter alone) and the import time of ``services.cli`` (``python -X importtime``).
* ``circles dev up``: a fresh data directory, free ports; the first start (broker, topics, seven processes,
  the sample data seeded through the APIs), then Ctrl-C and start again (the data kept, nothing to seed),
  each until "Circles is running" is printed. The broker is the stack's own, as ``make run``'s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import measurement
from tests.processes import free_port

BIN = Path(sys.executable).parent
RUNNING = "Circles is running"


def wall_s(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return round(time.perf_counter() - started, 3)


def import_ms(module: str) -> float:
    """The cumulative import time of ``module`` in a fresh interpreter (``-X importtime``), in ms."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in done.stderr.splitlines():
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return round(int(fields[1]) / 1000, 1)
    raise RuntimeError(f"no import time for {module}")


def help_measurements(runs: int) -> list[dict[str, Any]]:
    """``runs`` of each, alternating, so that the machine's load falls on all three alike."""
    helps, bare, imports = [], [], []
    for _ in range(runs):
        helps.append(wall_s([str(BIN / "circles"), "--help"]))
        bare.append(wall_s([sys.executable, "-c", "pass"]))
        imports.append(import_ms("services.cli"))
    return [
        measurement("circles_help_s", "s", helps, []),
        measurement("python_startup_s", "s", bare, []),
        measurement("circles_cli_import_ms", "ms", imports, []),
    ]


def dev_up(data_dir: Path, seconds: float = 900) -> tuple[float, str]:
    """``circles dev up`` until it says it is running (seconds, and the steps' times it printed), then Ctrl-C
    and wait for it to stop."""
    env = {
        **os.environ,
        "CIRCLES_DATA_DIR": str(data_dir),
        "CIRCLES_API_PORT": str(free_port()),
        "CIRCLES_MATCHING_API_PORT": str(free_port()),
        "CIRCLES_WEB_PORT": str(free_port()),
        "CIRCLES_VOLUNTEERS_WEB_PORT": str(free_port()),
        "CIRCLES_SMTP_PORT": str(free_port()),
        "CIRCLES_PARTNER_METRICS_PORT": str(free_port()),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    log = (data_dir.parent / f"{data_dir.name}-dev-up.log").open("ab")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "circles"), "dev", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    steps = ""
    try:
        for line in iter(process.stdout.readline, b""):
            log.write(line)
            if line.startswith(b"Started: "):
                steps = line.decode().strip().removeprefix("Started: ").rstrip(".")
            if RUNNING.encode() in line:
                return round(time.monotonic() - started, 1), steps
            if time.monotonic() - started > seconds:
                break
        raise RuntimeError(f"circles dev up did not get running within {seconds:.0f} s (see {log.name})")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def dev_up_measurements(data_dir: Path, restarts: int) -> list[dict[str, Any]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    first, first_steps = dev_up(data_dir)
    again = [dev_up(data_dir) for _ in range(restarts)]
    return [
        measurement("dev_up_first_s", "s", [first], [first_steps]),
        measurement(
            "dev_up_again_s", "s", [s for s, _ in again], [steps for _, steps in again], first_s=first
        ),
    ]


if __name__ == "__main__":
    for entry in help_measurements(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(entry["name"], entry["values"], "median", entry["median"])
