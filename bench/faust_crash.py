"""Reproduce why the workers do not run on faust-streaming (docs/architecture.md "Why not faust"): the
referrals crash test against a faust-streaming 0.15.3 worker shaped as ours was (``bench/faust_worker.py``).

    .venv/bin/python -m bench.faust_crash [--runs 3] [--referrals 1000] [--kill-after 300] [--raise-at N]

On first use it makes a virtual environment with faust-streaming 0.15.3 from PyPI
(``~/.cache/circles/faust-streaming-0.15.3``; the project's own environment never has faust). It starts a
throwaway Kafka broker (``deploy/kafka/local_kafka.py``; or ``--bootstrap``), and in each run, on topics of
its own: starts the worker, sends the referrals' commands from 16 senders at a steady pace, SIGKILLs the
worker once ``--kill-after`` are sent and starts it again at once (a supervisor restarts it whenever it
exits), has the agent raise once inside the batch holding command ``--raise-at`` (400; -1: never), as a
failing handler would, waits until every referral is decided or nothing changed for 30 s, and counts from
the topics: referrals without a decision (lost), decided referrals without state (lost state), and
redelivered decisions (harmless: consumers drop them by id). Exit status 0 when no referral was lost in
any run, 1 when faust lost some. Worker logs: ``bench-results/faust-crash/``. Not part of the test suite:
a run takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.dev.broker import local_kafka
from tests.kafka_helpers import consume_all

FAUST = "faust-streaming==0.15.3"
VENV = Path.home() / ".cache" / "circles" / "faust-streaming-0.15.3"
WORKER = Path(__file__).with_name("faust_worker.py")
LOGS = Path(__file__).resolve().parents[1] / "bench-results" / "faust-crash"
SENDERS = 16
PARTITIONS = 3  # as bench/faust_worker.py


def faust_python() -> Path:
    """The separate environment's interpreter, made (and faust installed from PyPI) on first use."""
    python = VENV / "bin" / "python"
    if not (VENV / ".installed").exists():
        print(f"installing {FAUST} into {VENV} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", FAUST], check=True)
        (VENV / ".installed").touch()
    return python


class FaustWorker:
    def __init__(self, python: Path, env: dict[str, str], log: Path) -> None:
        self.python, self.env, self.log = python, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [str(self.python), str(WORKER), "worker", "--loglevel", "warning"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def exited(self) -> bool:
        return self.popen is None or self.popen.poll() is not None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(30)

    def stop(self) -> None:
        try:
            self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_ready(self, readies: int, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while self.log.read_text(errors="replace").count("worker_ready") < readies:
            if time.monotonic() > deadline:
                raise SystemExit(f"the faust worker did not get ready; see {self.log}")
            time.sleep(0.2)


@dataclass
class Outcome:
    sent: int
    decided: int
    with_state: int
    redelivered: int
    starts: int

    @property
    def lost(self) -> int:
        return self.sent - self.decided

    def line(self) -> str:
        return (
            f"{self.sent} referrals, worker started {self.starts} times: {self.lost} without a decision "
            f"(lost), {self.decided - self.with_state} decided without state, "
            f"{self.redelivered} redelivered decisions"
        )


async def create_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(prefix + "commands", PARTITIONS, 1),
                NewTopic(prefix + "decisions", PARTITIONS, 1),
                NewTopic(
                    prefix + "referrals-state", PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"}
                ),
            ]
        )
    finally:
        await admin.close()


async def send_commands(
    bootstrap: str, prefix: str, referrals: int, kill_after: int, worker: FaustWorker
) -> list[str]:
    ids = [f"ref-{uuid.uuid4().hex[:12]}" for _ in range(referrals)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for seq in range(referrals):
        queue.put_nowait(seq)
    sent = 0
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    async def sender() -> None:
        nonlocal sent
        while not queue.empty():
            seq = queue.get_nowait()
            value = f'{{"referral_id": "{ids[seq]}", "seq": {seq}}}'.encode()
            await producer.send_and_wait(prefix + "commands", value, key=ids[seq].encode())
            sent += 1
            if sent == kill_after:
                worker.kill()  # SIGKILL mid-stream, as the crash test does
                worker.start()
            await asyncio.sleep(0.05)  # about 300 referrals a second from the 16 senders

    try:
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    finally:
        await producer.stop()
    return ids


async def decided(bootstrap: str, prefix: str) -> list[str]:
    return [record.key.decode() for record in await consume_all(bootstrap, prefix + "decisions")]


async def one_run(bootstrap: str, python: Path, folder: Path, args: argparse.Namespace) -> Outcome:
    prefix = f"faust-{uuid.uuid4().hex[:8]}."
    await create_topics(bootstrap, prefix)
    data = folder / prefix.strip(".")
    data.mkdir()
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FAUST_BOOTSTRAP": bootstrap,
        "FAUST_PREFIX": prefix,
        "FAUST_DATA": str(data),
        "FAUST_RAISE_AT": str(args.raise_at),
        "FAUST_WORK_MS": str(args.work_ms),
        "FAUST_STATE_BYTES": str(args.state_bytes),
    }
    worker = FaustWorker(python, env, LOGS / f"{prefix.strip('.')}.log")
    worker.start()
    worker.wait_ready(1)

    async def supervise() -> None:  # as a process supervisor would: restart the worker whenever it exits
        while True:
            if worker.exited():
                worker.start()
            await asyncio.sleep(0.5)

    supervisor = asyncio.create_task(supervise())
    try:
        ids = await send_commands(bootstrap, prefix, args.referrals, args.kill_after, worker)
        last, changed = -1, time.monotonic()
        while time.monotonic() - changed < 30:
            count = len(set(await decided(bootstrap, prefix)))
            if count == len(ids):
                break
            if count != last:
                last, changed = count, time.monotonic()
            await asyncio.sleep(1)
    finally:
        supervisor.cancel()
        worker.stop()
    decisions = Counter(await decided(bootstrap, prefix))
    state = {record.key.decode() for record in await consume_all(bootstrap, prefix + "referrals-state")}
    sent = set(ids)
    return Outcome(
        sent=len(ids),
        decided=len(sent & set(decisions)),
        with_state=len(sent & set(decisions) & state),
        redelivered=sum(decisions.values()) - len(decisions),
        starts=worker.starts,
    )


async def main_async(args: argparse.Namespace) -> int:
    python = faust_python()
    with tempfile.TemporaryDirectory(prefix="faust-crash-") as temporary:
        folder = Path(temporary)
        broker = None
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = local_kafka().LocalKafka(data_dir=folder / "kafka")
            bootstrap = broker.start()
        try:
            outcomes = []
            for run in range(1, args.runs + 1):
                outcome = await one_run(bootstrap, python, folder, args)
                outcomes.append(outcome)
                print(f"run {run}: {outcome.line()}", flush=True)
        finally:
            if broker is not None:
                broker.stop()
    lost = [outcome.lost for outcome in outcomes]
    verdict = "reproduced" if any(lost) else "not reproduced"
    print(f"{FAUST}: referrals lost per run {lost} ({verdict})")
    return 1 if any(lost) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--referrals", type=int, default=1000)
    parser.add_argument("--kill-after", type=int, default=300, help="SIGKILL the worker after this many sent")
    parser.add_argument(
        "--raise-at", type=int, default=400, help="the agent raises once at this command (-1: never)"
    )
    parser.add_argument("--work-ms", type=float, default=1.5, help="CPU time per referral in the worker")
    parser.add_argument("--state-bytes", type=int, default=2000, help="size of a referral's state record")
    parser.add_argument("--bootstrap", help="an existing broker (default: start a throwaway one)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
