"""The ports the tests' processes listen on (``tests/processes.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import LISTEN_PORTS, free_port


def test_listening_ports_are_below_the_ephemeral_range_distinct_and_the_workers_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bind to port 0 (a probe without a set port) takes from the ephemeral range: never one handed out."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(LISTEN_PORTS.start + len(LISTEN_PORTS) // 2 <= port < ephemeral_low for port in ports)
