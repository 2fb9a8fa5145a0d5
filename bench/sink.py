"""A local SMTP sink (aiosmtpd) in a process of its own: takes every message and writes one line per message
to a file: the time it was taken (``time.time()``, at the end of DATA), ``X-Circles-Event-Id`` (the
notification id) and ``X-Circles-Template``. Message content is not kept.

    python -m bench.sink --port P --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.processes import free_port

WANTED = {b"x-circles-event-id": 1, b"x-circles-template": 2}


def header_fields(content: bytes) -> tuple[str, str]:
    """(event id, template) from a message's header section; empty strings when absent."""
    found = ["", ""]
    head = content.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        slot = WANTED.get(name.strip().lower())
        if slot is not None:
            found[slot - 1] = value.strip().decode("ascii", errors="replace")
    return found[0], found[1]


class _Recorder:
    """Runs in the controller's thread; the main thread writes the lines out (a deque is thread-safe)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        event_id, template = header_fields(envelope.content)
        self.lines.append(f"{time.time():.6f}\t{event_id}\t{template}\n")
        return "250 Message accepted"


def serve(port: int, out_path: Path) -> None:
    recorder = _Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    stop = {"now": False}

    def request_stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with out_path.open("a") as out:
        while not stop["now"]:
            time.sleep(0.05)
            while recorder.lines:
                out.write(recorder.lines.popleft())
            out.flush()
    controller.stop()


@dataclass
class Delivery:
    at: float
    notification_id: str
    template: str


class SinkProcess:
    """Starts the sink, and reads what it has taken so far (``poll()``)."""

    def __init__(self, out_path: Path) -> None:
        self.out_path = out_path
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> SinkProcess:
        self.out_path.unlink(missing_ok=True)
        self.out_path.touch()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--port", str(self.port), "--out", str(self.out_path)],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
                return self
            time.sleep(0.1)
        raise RuntimeError("the SMTP sink did not start")

    def poll(self) -> list[Delivery]:
        with self.out_path.open("rb") as data:
            data.seek(self._offset)
            chunk = data.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        found = []
        for line in complete.decode().splitlines():
            at, notification_id, template = line.split("\t")
            found.append(Delivery(float(at), notification_id, template))
        return found

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()


async def collect(sink: SinkProcess, into: list[Delivery], interval: float = 0.05) -> None:
    """Until cancelled: append what the sink has taken to ``into``."""
    while True:
        into.extend(sink.poll())
        await asyncio.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    serve(args.port, args.out)


if __name__ == "__main__":
    main()
