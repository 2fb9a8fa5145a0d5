"""Starting faster without starting wrong (issue 13, `make run` again): a process waits at its start gate
until the stack opens it, and a process's start steps taken together all end before a failure is raised."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from services import processes
from services.processes import START_GATE, wait_for_start_gate
from services.runtime.supervision import together


def test_without_a_gate_a_process_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_GATE, raising=False)
    began = time.monotonic()
    wait_for_start_gate()
    assert time.monotonic() - began < 0.05


def test_a_process_waits_until_its_gate_opens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gate = tmp_path / "started"
    monkeypatch.setenv(START_GATE, str(gate))
    opener = threading.Timer(0.3, gate.touch)
    began = time.monotonic()
    opener.start()
    wait_for_start_gate(poll_s=0.01)
    waited = time.monotonic() - began
    assert gate.exists()
    assert 0.25 < waited < 5


def test_a_gate_that_stays_shut_ends_the_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(START_GATE, str(tmp_path / "never"))
    monkeypatch.setattr(processes, "GATE_LIMIT_S", 0.2)
    with pytest.raises(SystemExit, match="not opened"):
        wait_for_start_gate(poll_s=0.01)


def test_steps_together_run_at_once_and_all_end_before_a_failure_is_raised() -> None:
    ended: list[str] = []

    async def step(name: str, seconds: float, fail: bool = False) -> None:
        await asyncio.sleep(seconds)
        if fail:
            raise LookupError(name)
        ended.append(name)

    async def main() -> float:
        began = time.monotonic()
        await together(step("a", 0.3), step("b", 0.3), step("c", 0.3))
        return time.monotonic() - began

    assert asyncio.run(main()) < 0.8  # at once: not 0.9 s in turn
    ended.clear()
    with pytest.raises(LookupError, match="fails"):
        asyncio.run(together(step("fails", 0.01, fail=True), step("slow", 0.2)))
    assert ended == ["slow"]  # the slower step was not abandoned mid-way
