"""The partner API from outside (issue 13): HTTP clients on the same machine, keep-alive connections, the
demo agencies' API keys, every submission followed until the matching service proposes (or defers) it.

Two measurements in one pipeline round (all services, fresh topics, a volunteer pool sized for it):

* ``paced``: ``count`` referrals at ``rate``/s (default 100 at 10/s), one client: how long a ``POST`` takes
  (until its 202, which the API gives only once the command is acknowledged by the broker), and from the
  ``POST`` being sent until the referral is *decided* (the referrals worker's ``referral assessed`` event)
  and *proposed* (the matching service's outcome event).
* ``flat_out``: ``count`` referrals (default 2,000) sent by ``clients`` keep-alive clients (default 16) as
  fast as the API takes them: submissions accepted per second (first ``POST`` sent to last 202), referrals
  decided per second (first ``POST`` to last decision), and the decided and proposed latencies.

"Decided" and "proposed" are when the driver's own consumers of the referral events and matching events
topics had the events (what any consumer can see), on this machine's clock, like ``bench.latency``. The
client runs in the driver's process, on the same 2 cores as the broker and the seven services: what it
costs is in the figures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from bench.latency import percentiles_ms
from bench.pipeline import Follower, Round
from bench.profile import Spy, idle, stacks, top_functions
from bench.workload import Submission
from schemas.topics import REFERRAL_EVENTS, TopicSpec

ASSESSED = "circles.referral.assessed.v1"
TARGETS = {"post_p50_ms": 10.0, "proposed_p50_ms": 20.0, "proposed_p99_ms": 100.0, "decided_per_s": 1000.0}
"""The issue's targets for these rows (engineering brief's table)."""


@dataclass
class Decisions(Follower):
    """Follows the referral events topic from its end: when each referral's first assessment was seen."""

    topic: ClassVar[TopicSpec] = REFERRAL_EVENTS
    seen: dict[str, float] = field(default_factory=dict)

    def on_record(self, record: Any, now: float) -> None:
        kind = next((v for k, v in record.headers or () if k == "ce_type"), b"")
        if kind == ASSESSED.encode() and record.key is not None:
            self.seen.setdefault(record.key.decode(), now)


class Client:
    """Keep-alive HTTP connections to the partner API, one agency key per submission's agency."""

    def __init__(self, base_url: str, api_keys: dict[str, str], connections: int) -> None:
        self.base_url = base_url
        self.api_keys = api_keys
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self.statuses: dict[int, int] = {}

    async def close(self) -> None:
        await self.session.close()

    async def submit(self, submission: Submission) -> float:
        """POST it (again after a 503 or 429, as a client should); returns when it was first sent."""
        body = submission.event.model_dump(mode="json", exclude={"event_type"})
        headers = {"Authorization": f"Bearer {self.api_keys[submission.agency_id]}"}
        sent = time.time()
        for _ in range(20):
            async with self.session.post(
                f"{self.base_url}/v1/referrals", json=body, headers=headers
            ) as answer:
                await answer.read()
                self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
                if answer.status in (200, 202):
                    return sent
                if answer.status not in (429, 503):
                    raise RuntimeError(f"POST answered {answer.status}: {(await answer.text())[:200]}")
            await asyncio.sleep(0.5)
        raise RuntimeError("POST refused 20 times")


async def wait_until(done: Any, seconds: float, stall_s: float = 60.0) -> bool:
    """Until ``done()`` is true; gives up after ``seconds``, or after ``stall_s`` without progress."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        await asyncio.sleep(0.05)
    return False


async def paced(
    round_: Round, client: Client, decisions: Decisions, count: int, rate: float
) -> dict[str, Any]:
    batch = round_.referrals(count)
    sent: dict[str, float] = {}
    post_s: list[float] = []
    began = time.monotonic()
    for n, submission in enumerate(batch):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter()
        sent[submission.referral_id] = await client.submit(submission)
        post_s.append(time.perf_counter() - started)
    ids = list(sent)
    outcomes = round_.observer.outcomes
    complete = await wait_until(lambda: all(r in outcomes for r in ids), 120)
    decided = [r for r in ids if r in decisions.seen]
    proposed = [r for r in ids if r in outcomes]
    return {
        "referrals": count,
        "offered_per_s": rate,
        "complete": complete,
        "post_ms": percentiles_ms(post_s),
        "decided_ms": percentiles_ms([decisions.seen[r] - sent[r] for r in decided]),
        "proposed_ms": percentiles_ms([outcomes[r].observed_at - sent[r] for r in proposed]),
        "proposals": sum(1 for r in proposed if outcomes[r].kind == "proposed"),
    }


async def flat_out(
    round_: Round, client: Client, decisions: Decisions, count: int, clients: int
) -> dict[str, Any]:
    batch = round_.referrals(count)
    queue: asyncio.Queue[Submission] = asyncio.Queue()
    for submission in batch:
        queue.put_nowait(submission)
    sent: dict[str, float] = {}
    answered: list[float] = []

    async def one_client() -> None:
        while not queue.empty():
            submission = queue.get_nowait()
            sent[submission.referral_id] = await client.submit(submission)
            answered.append(time.time())

    first = time.time()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    ids = list(sent)
    outcomes = round_.observer.outcomes
    complete = await wait_until(lambda: all(r in decisions.seen for r in ids), 300)
    await wait_until(lambda: all(r in outcomes for r in ids), 120)
    decided = [r for r in ids if r in decisions.seen]
    proposed = [r for r in ids if r in outcomes]
    last_decided = max(decisions.seen[r] for r in decided) if decided else first
    last_proposed = max(outcomes[r].observed_at for r in proposed) if proposed else first
    return {
        "referrals": count,
        "clients": clients,
        "complete": complete,
        "accepted_per_s": round(count / (max(answered) - first), 1),
        "decided_per_s": round(len(decided) / (last_decided - first), 1) if decided else 0.0,
        "proposed_per_s": round(len(proposed) / (last_proposed - first), 1) if proposed else 0.0,
        "decided_ms": percentiles_ms([decisions.seen[r] - sent[r] for r in decided]),
        "proposed_ms": percentiles_ms([outcomes[r].observed_at - sent[r] for r in proposed]),
    }


PROFILED = ("referrals-api", "referrals-worker")


def profile_summary(spy: Spy, path: Path | None, referrals: int) -> dict[str, Any]:
    """CPU use of a process sampled during a flat-out run, and the functions holding most busy samples."""
    summary: dict[str, Any] = {
        "cpu_pct_of_core": round(100 * spy.cpu_s / spy.wall_s, 1) if spy.wall_s else None,
        "cpu_ms_per_referral": round(1000 * spy.cpu_s / referrals, 2),
    }
    if path is not None:
        own, inclusive, total = top_functions(path, count=15)
        waiting = sum(n for frames, n in stacks(path) if idle(frames))
        summary |= {
            "samples": total,
            "idle_pct": round(100 * waiting / total, 1) if total else None,
            "own": [(frame, round(100 * n / total, 1)) for frame, n in own],
            "inclusive": [(frame, round(100 * n / total, 1)) for frame, n in inclusive],
        }
    return summary


async def measure(
    round_: Round,
    runs: int,
    paced_count: int,
    paced_rate: float,
    flat_count: int,
    clients: int,
    profile_to: Path | None = None,
) -> list[dict[str, Any]]:
    """``runs`` of each measurement in the round (fresh referrals each time), paced then flat out; with
    ``profile_to``, the partner API and the referrals worker are sampled by py-spy during the first flat-out
    run (``<process>-partner.txt``, collapsed stacks)."""
    decisions = Decisions(round_.stack.bootstrap, round_.stack.prefix)
    await decisions.start()
    client = Client(f"http://127.0.0.1:{round_.stack.ports['api']}", round_.stack.api_keys, clients)
    results = []
    try:
        for n in range(runs):
            slow = await paced(round_, client, decisions, paced_count, paced_rate)
            spies = {}
            if profile_to is not None and n == 0:
                await asyncio.to_thread(profile_to.mkdir, parents=True, exist_ok=True)
                for name in PROFILED:
                    pid = round_.stack.processes[name].pid
                    spies[name] = Spy(pid, profile_to / f"{name}-partner.txt").start()
            try:
                fast = await flat_out(round_, client, decisions, flat_count, clients)
            finally:
                files = {name: spy.stop() for name, spy in spies.items()}
            result = {"paced": slow, "flat_out": fast, "statuses": dict(client.statuses)}
            if spies:
                result["profile"] = {
                    name: profile_summary(spy, files[name], flat_count) for name, spy in spies.items()
                }
            results.append(result)
    finally:
        await client.close()
        await decisions.stop()
    return results
