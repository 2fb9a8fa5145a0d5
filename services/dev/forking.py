"""Processes forked from one that has imported their modules already.

A ``circles`` process started as a fresh interpreter spends about 1 s of CPU (2 s on a loaded machine)
importing pydantic models, aiokafka, FastAPI and the rest before it does anything. ``circles dev up`` starts
nine at once, and the integration tests several hundred, so both import everything once (``preload``) and
fork each process from there (``fork_into``). The child is still a process of its own: own pid and session,
its own environment, working directory and standard streams, default signal handling, the same entry point.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping

PRELOADED = (
    "uvicorn",
    "services.runtime.worker",
    "services.referrals.api",
    "services.referrals.agents",
    "services.matching.api",
    "services.matching.agents",
    "services.coordinator.web",
    "services.coordinator.volunteers_web",
    "services.coordinator.agents",
    "services.notifications.agents",
    "services.circles.agents",
)
"""What the processes import. A module left out is only imported by the process itself."""


def preload(more: Iterable[str] = ()) -> bool:
    """Import ``PRELOADED`` (and ``more``); True when this process may fork from here (no thread started:
    a fork copies only the calling thread, and a lock another thread held would stay held in the child)."""
    for module in (*PRELOADED, *more):
        importlib.import_module(module)
    return threading.active_count() == 1


class Forked:
    """A child of this process, forked by ``fork_into``: what a supervisor uses of ``subprocess.Popen``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_into(
    run: Callable[[], object],
    env: Mapping[str, str],
    stdio: tuple[int, int, int],
    *,
    cwd: str | None = None,
    new_session: bool = True,
    close: Iterable[int] = (),
) -> int:
    """Fork; the child becomes the process (``stdio`` as its standard streams, ``env`` as its whole
    environment, its own session when ``new_session``), runs ``run`` and exits with its code, never
    returning into the caller's code. Returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        if new_session:
            os.setsid()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for fd in set(stdio) - {0, 1, 2}:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        if cwd is not None:
            os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        run()
        code = 0
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            sys.stderr.write(exit_.code + "\n")
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:  # the child ends here, as an interpreter would
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()  # logging's flush, among others
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
