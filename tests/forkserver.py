"""A fork server for the tests' ``circles`` processes and commands.

The integration tests start a few hundred service processes and run a few hundred ``circles`` commands;
as fresh interpreters each spent about 1 s of CPU importing the same modules, a fifth of the suite's CPU on
this 2-core machine. One server per pytest process imports them once (``services.dev.forking.preload``,
as ``circles dev up`` does) and forks each process from there: the test's own standard streams (passed
over the socket), environment, working directory and session, the ``circles`` entry point with the same
arguments. A SIGKILL kills it as it kills an interpreter; its exit code comes back over the socket.

What needs a fresh interpreter (``make run``'s ``circles dev up`` in test_run_command) starts one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    "services.cli",
    "services.circles.commands",
    "services.coordinator.commands",
    "services.coordinator.scheme_commands",
    "services.matching.commands",
    "services.notifications.commands",
    "services.ops.commands",
    "services.ops.topics",
    "services.referrals.commands",
)
"""The ``circles`` command groups the tests run, imported by the server beside the processes' modules."""


def run_circles(args: Sequence[str]) -> None:
    """The ``circles`` console script, in this process (raises SystemExit with its exit code)."""
    from services.cli import main

    sys.argv = ["circles", *args]
    main(args=list(args), prog_name="circles")


def serve(path: str) -> None:
    """Fork a child per request until the process that started this one is gone."""
    from services.dev.forking import fork_into, preload

    if not preload(COMMANDS):
        raise SystemExit("a thread started while importing: cannot fork safely")
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)  # clients connect only once it listens
    running: dict[int, socket.socket] = {}
    while os.getppid() == parent:
        if select.select([listener], [], [], 0.05)[0]:
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request = json.loads(message)
            try:
                pid = fork_into(
                    functools.partial(run_circles, request["args"]),
                    request["env"],
                    (fds[0], fds[1], fds[2]),
                    cwd=request["cwd"],
                    new_session=request["session"],
                    close=[listener.fileno(), conn.fileno(), *(c.fileno() for c in running.values())],
                )
            finally:
                for fd in fds:
                    os.close(fd)
            conn.send(str(pid).encode())
            running[pid] = conn
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            conn = running.pop(pid)
            with contextlib.suppress(OSError):  # the test stopped waiting for it
                conn.send(str(os.waitstatus_to_exitcode(status)).encode())
            conn.close()


class ForkedProcess:
    """A child of the fork server: what the tests use of ``subprocess.Popen``."""

    def __init__(self, args: Sequence[str], pid: int, conn: socket.socket) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self._conn = conn

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._collect()
        assert self.returncode is not None
        return self.returncode

    def _collect(self) -> None:
        answer = self._conn.recv(64)
        self._conn.close()
        if not answer:
            raise RuntimeError(f"the fork server ended before process {self.pid} did")
        self.returncode = int(answer)


class ForkServer:
    def __init__(self) -> None:
        self.path = str(Path(tempfile.mkdtemp(prefix="circles-fork-")) / "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.path],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not os.path.exists(self.path):
            if self.process.poll() is not None:
                raise RuntimeError(f"the fork server exited ({self.process.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError("the fork server did not start within 120 s")
            time.sleep(0.05)

    def spawn(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        stdio: tuple[int, int, int],
        *,
        cwd: str | Path | None = None,
        new_session: bool = True,
    ) -> ForkedProcess:
        """``circles <args>`` as a child of the server, with these streams (left open here)."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(self.path)
        request = {
            "args": list(args),
            "env": dict(env),
            "cwd": str(cwd or os.getcwd()),
            "session": new_session,
        }
        socket.send_fds(conn, [json.dumps(request).encode()], list(stdio))
        answer = conn.recv(64)
        if not answer:
            raise RuntimeError("the fork server did not answer")
        return ForkedProcess(args, int(answer), conn)

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))


_server: ForkServer | None = None
_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This pytest process's fork server, started on first use and stopped when the process exits."""
    global _server
    with _lock:
        if _server is None or _server.process.poll() is not None:
            _server = ForkServer()
            atexit.register(_server.stop)
        return _server


def run(
    args: Sequence[str], env: Mapping[str, str], *, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``circles <args>`` to completion, its output captured: ``subprocess.run`` for a forked command."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        process = fork_server().spawn(args, env, (stdin_r, out_w, err_w), new_session=False)
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    outputs: dict[int, bytes] = {}

    def read(fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            outputs[fd] = stream.read()

    readers = [threading.Thread(target=read, args=(fd,), daemon=True) for fd in (out_r, err_r)]
    for reader in readers:
        reader.start()
    with os.fdopen(stdin_w, "wb") as stdin, contextlib.suppress(BrokenPipeError):
        stdin.write((input or "").encode())
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, 9)
        raise
    for reader in readers:
        reader.join()
    return subprocess.CompletedProcess(
        list(args), code, outputs[out_r].decode(errors="replace"), outputs[err_r].decode(errors="replace")
    )


if __name__ == "__main__":
    serve(sys.argv[1])
