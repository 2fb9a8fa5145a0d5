"""The tests' fork server (``tests/forkserver.py``): a forked ``circles`` gets the caller's arguments,
environment and streams, and its exit code (or the signal that killed it) comes back as a process's would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.forkserver import fork_server, run
from tests.processes import service_env


def test_a_command_answers_with_its_output_and_exit_code() -> None:
    version = run(["--version"], os.environ)
    assert version.returncode == 0 and version.stdout.startswith("circles "), version
    unknown = run(["circle", "no-such-command"], os.environ)
    assert unknown.returncode == 2 and "No such command" in unknown.stderr and unknown.stdout == ""


def test_the_child_has_the_callers_environment_and_nothing_else() -> None:
    broken = run(["run", "referrals-worker"], {"PATH": "/usr/bin:/bin", "CIRCLES_COMMIT_INTERVAL_S": "soon"})
    assert broken.returncode == 1
    assert "setting commit_interval_s" in broken.stderr, broken.stderr
    fine = run(["run", "referrals-worker", "--help"], {"PATH": "/usr/bin:/bin"})
    assert fine.returncode == 0 and "Run one process" in fine.stdout


def test_a_sigkill_is_reported_as_the_signal_and_waiting_can_time_out(
    tmp_path: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never answers: it waits
        env = service_env(f"127.0.0.1:{silent.getsockname()[1]}", "t.", tmp_path)
        nothing = os.open(os.devnull, os.O_RDWR)
        try:
            process = fork_server().spawn(["run", "referrals-worker"], env, (nothing, nothing, nothing))
        finally:
            os.close(nothing)
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(3)
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)  # its own session, as ServiceProcess kills it
        assert process.wait(10) == -signal.SIGKILL
