"""Where the time goes: the service processes sampled by py-spy while a pipeline round runs flat out.

    python -m bench.profile [--referrals 3000] [--out bench-results/profiles]

One round as ``bench.end_to_end`` runs it (all services, fresh topics), every process sampled by py-spy
(200 Hz, ``--nonblocking``: the process is not paused, so the stacks are approximate, the cost small) from
the first submission to the last notification. Writes each process's collapsed stacks (``<process>.txt``,
the input of flame graph tools: speedscope.app, flamegraph.pl) and prints each process's CPU use over the
run and the functions holding most samples, own and inclusive. Use it when a target is missed, to see which
process is the bottleneck and what it spends its time on; ``make bench`` does not run it.

The helpers (``Spy``, ``cpu_seconds``, ``top_functions``, ``share``) are used by ``bench.encryption`` too.
py-spy needs ptrace rights over the processes (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from bench import end_to_end, pipeline

PY_SPY = Path(sys.executable).parent / "py-spy"
CLOCK_TICKS = 100  # /proc/<pid>/stat counts CPU time in clock ticks (USER_HZ, 100 on Linux)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class Spy:
    """py-spy recording one process until ``stop()``, to a collapsed-stacks file."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self._popen: subprocess.Popen[bytes] | None = None
        self._cpu_start = 0.0
        self._started = 0.0
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def start(self) -> Spy:
        command = [str(PY_SPY), "record", "--pid", str(self.pid), "--rate", str(self.rate)]
        command += ["--format", "raw", "--output", str(self.out), "--nonblocking"]
        with self.out.with_suffix(".py-spy.log").open("w") as log:
            self._popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        self._cpu_start, self._started = cpu_seconds(self.pid), time.monotonic()
        return self

    def stop(self) -> Path | None:
        """Stop sampling (py-spy writes its file on SIGINT); the file, if py-spy could write one."""
        self.cpu_s = cpu_seconds(self.pid) - self._cpu_start
        self.wall_s = time.monotonic() - self._started
        if self._popen is not None:
            self._popen.send_signal(signal.SIGINT)
            try:
                self._popen.wait(30)
            except subprocess.TimeoutExpired:
                self._popen.kill()
        return self.out if self.out.exists() and self.out.stat().st_size else None


def stacks(collapsed: Path) -> Iterable[tuple[list[str], int]]:
    """(frames, root first; samples) for each line of py-spy's raw (collapsed-stack) output."""
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            yield stack.split(";"), int(samples)


def top_functions(
    collapsed: Path, count: int = 12, roots: float = 0.9
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """(own samples, inclusive samples, total) per function from py-spy's collapsed-stack output; frames
    on more than ``roots`` of all stacks (the entry point, the event loop) are left out of the inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, n in stacks(collapsed):
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    below = Counter({frame: n for frame, n in inclusive.items() if n <= roots * total})
    return own.most_common(count), below.most_common(count), total


def idle(frames: list[str]) -> bool:
    """A stack waiting in the event loop's ``select`` (py-spy's ``--nonblocking`` samples count some)."""
    return frames[-1].startswith(("EpollSelector.select (", "select (selectors.py"))


def share(collapsed: Path, wanted: Callable[[str], bool]) -> tuple[int, int]:
    """(busy samples with a ``wanted`` frame anywhere on the stack, busy samples): idle ones left out."""
    hit = total = 0
    for frames, n in stacks(collapsed):
        if idle(frames):
            continue
        total += n
        if any(wanted(frame) for frame in frames):
            hit += n
    return hit, total


async def profile(referrals: int, out: Path, work: Path) -> None:
    from services.dev.broker import local_kafka

    broker = local_kafka().LocalKafka(data_dir=work / "kafka")
    bootstrap = await asyncio.to_thread(broker.start)
    try:
        today = date.today()
        async with pipeline.pipeline_round(bootstrap, "profile", work, referrals + 50, today) as round_:
            await pipeline.warm_up(round_)
            spies = {
                name: Spy(process.pid, out / f"{name}.txt").start()
                for name, process in round_.stack.processes.items()
            }
            try:
                result = await end_to_end.measure(round_, referrals)
            finally:
                files = {name: spy.stop() for name, spy in spies.items()}
    finally:
        await asyncio.to_thread(broker.stop)
    rate, elapsed = result["overall_per_s"], result["elapsed_s"]
    print(f"{referrals} referrals: {rate} referrals/s, first submission to last email ({elapsed} s)")
    for name, spy in spies.items():
        print(f"  {name:<22} CPU {100 * spy.cpu_s / spy.wall_s:5.1f}% of one core")
    for name, path in files.items():
        if path is None:
            print(f"\n== {name}: no samples (see {out / name}.py-spy.log)")
            continue
        own, inclusive, total = top_functions(path)
        print(f"\n== {name}: {total} samples; own time")
        for frame, n in own:
            print(f"  {100 * n / total:5.1f}%  {frame}")
        print("   inclusive (frames on nearly every stack left out)")
        for frame, n in inclusive:
            print(f"  {100 * n / total:5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("bench-results/profiles"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    work = Path(tempfile.mkdtemp(prefix="circles-profile-"))
    try:
        asyncio.run(profile(args.referrals, args.out, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
