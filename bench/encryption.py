"""What encryption costs on the referrals path (issue 8): field sealing as shipped, against the same work
without it where that can be measured, in the same run.

Codec (``codec``): one referral submission command (``SubmitReferral``: what the referrals worker writes
for every inbound submission, nine personal fields) encoded and decoded again and again, plain
(``schemas.envelope.encode`` / ``decode``) and sealed (``services.protection.codec.encode_record`` /
``decode_record`` with the services' sealer, its data key in hand): round trips per second, each way's
microseconds, and the ratio. Beside it, a new data key, which the worker makes for every new referral:
its wrapping under the KEK alone (CPU), and ``KeyStore.ensure`` end to end (the key record written to the
keys topic and acknowledged by the broker), one after another, as the worker's unit of work makes them.
And the referral's state record (``ReferralEntry``, the referrals worker's table value) read back from its
changelog bytes, plain (``model_validate_json``) and sealed (``Sealer.parse``: open, then validate), which
a restarted worker does for every referral the first time its table is scanned whole (the re-assessment
timer does so as soon as the worker is ready).

Referrals service (``service``): the referrals worker alone on fresh topics; ``--encryption-referrals``
inbound submissions offered at once; referrals per second from the first submission until the last one's
``referral assessed`` event is out. (Not the 10%-90% "sustained" rate of the end-to-end benchmark: the
worker takes up to 500 records in one unit of work and its outputs come out in bursts, so a window
between completions measures a burst; it is kept in the results as ``sustained_per_s``.) Two hops (inbound
→ worker → commands → worker → events), so against the raw aiokafka rate of the same run the ideal ratio
is 1/2.
Sealing cannot be switched off in the service without a hack (a table of personal data refuses to exist
without a sealer, and there is no setting), so the comparison is made two ways instead:

* as shipped (the worker makes each new referral's data key and waits for the broker's acknowledgement
  before sealing with it) against **keys made ahead** (the same run with every referral's data key already
  on the keys topic when the worker starts): what making data keys costs;
* the worker sampled by py-spy during both runs: the share of its busy samples inside sealing and opening
  (``services/protection``: sealing, keystore, KEK, and the sealer's seal/open calls; model validation and
  JSON that plain records need too are not counted), and with its CPU time (``/proc``) the CPU spent
  sealing and opening per referral. A lower bound: the keys topic's reader and the broker's own work for
  the key records are not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.profile import PY_SPY, Spy, share
from bench.stack import Stack
from bench.stats import percentile, sustained_rate
from bench.workload import Record, Submission, inbound_topic, submissions
from schemas.envelope import Envelope, Event, decode, encode
from schemas.events.referrals import ReferralAssessed, SubmitReferral
from schemas.topics import REFERRAL_EVENTS
from services.protection.codec import decode_record, encode_record
from services.protection.keks import LocalKeks
from services.protection.sealer import Sealer
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import ReferralEntry, submit
from services.runtime.kafka import producer as make_producer

WORKER = "referrals-worker"
HOPS = 2
SEALING_FILES = (
    "services/protection/sealing.py",
    "services/protection/keystore.py",
    "services/protection/keks.py",
)
SEALER_CALLS = {"seal_json", "open_json", "prepare", "seal_bytes", "open_bytes", "key", "_known", "store_for"}
"""The sealer's own seal/open work; not ``parse`` (it validates the model, as a plain record needs too)."""


def sealing_frame(frame: str) -> bool:
    """Whether a py-spy frame (``function (path:line)``) is sealing or opening work."""
    function, _, where = frame.partition(" (")
    if any(path in where for path in SEALING_FILES):
        return True
    return "services/protection/sealer.py" in where and function.rsplit(".", 1)[-1] in SEALER_CALLS


def command_for(submission: Submission) -> tuple[SubmitReferral, Envelope]:
    """The command the referrals worker makes of an inbound submission, with its envelope."""
    command = SubmitReferral(
        referral_id=uuid.UUID(submission.referral_id),
        agency_id=submission.agency_id,
        submission=submission.event,
        fingerprint=submission.event.fingerprint(),
        received_at=datetime.now(UTC),
        channel="kafka",
    )
    envelope = Envelope.for_event(
        command, source="/circles/referrals", correlation_id=f"bench-{submission.referral_id}"
    )
    return command, envelope


async def codec(
    sealer: Sealer, run: str, rounds: int = 3_000, blocks: int = 10, subjects: int = 50
) -> dict[str, Any]:
    """Plain and sealed encode/decode of submission commands, in alternating blocks (so that a change in
    the machine's load falls on both alike); a new data key's cost."""
    known: dict[str, type[Event]] = {SubmitReferral.event_type: SubmitReferral}
    commands = [command_for(s) for s in submissions(f"codec-{run}", subjects, date.today())]
    for command, _ in commands:  # the data keys in hand, as for a referral the worker has seen
        await sealer.store_for(command.data_subject()).ensure(command.data_subject())
    picks = [commands[n % subjects] for n in range(rounds // blocks)]
    spent = dict.fromkeys(("plain_encode", "plain_decode", "sealed_encode", "sealed_decode"), 0.0)
    for _ in range(blocks):
        started = time.perf_counter()
        plain = [encode(command, envelope) for command, envelope in picks]
        spent["plain_encode"] += time.perf_counter() - started
        started = time.perf_counter()
        for _, value, headers in plain:
            decode(value, headers, known)
        spent["plain_decode"] += time.perf_counter() - started
        started = time.perf_counter()
        sealed = [await encode_record(command, envelope, sealer) for command, envelope in picks]
        spent["sealed_encode"] += time.perf_counter() - started
        started = time.perf_counter()
        for _, value, headers in sealed:
            await decode_record(value, headers, known, sealer)
        spent["sealed_decode"] += time.perf_counter() - started
    assert all(b"sealed:v1:" in value for _, value, _ in sealed)
    done = len(picks) * blocks

    policy, now = load_policy(), datetime.now(UTC)
    entries = []
    for command, envelope in commands:  # the table values the worker writes for these submissions
        entry = submit(None, command, envelope.id, policy, now, "http://bench.invalid").entry
        assert entry is not None
        subject = f"referral:{command.referral_id}"
        sealed_json = await sealer.seal_json(ReferralEntry, entry.model_dump(mode="json"), subject)
        entries.append((entry.model_dump_json().encode(), json.dumps(sealed_json).encode()))
    state = [entries[n % subjects] for n in range(done)]
    started = time.perf_counter()
    for plain_raw, _ in state:
        ReferralEntry.model_validate_json(plain_raw)
    state_plain_s = time.perf_counter() - started
    started = time.perf_counter()
    for _, sealed_raw in state:
        sealer.parse(ReferralEntry, sealed_raw)
    state_sealed_s = time.perf_counter() - started

    keks = LocalKeks({"bench": bytes(32)}, "bench")
    started = time.perf_counter()
    for n in range(done):
        keks.wrap(bytes(32), f"referral:{n}".encode())
    wrap_s = time.perf_counter() - started
    new_keys = []
    for _ in range(200):  # one after another, as a unit of work makes them
        subject = f"referral:{uuid.uuid4()}"
        began = time.perf_counter()
        await sealer.store_for(subject).ensure(subject)
        new_keys.append((time.perf_counter() - began) * 1000)

    plain_per_s = done / (spent["plain_encode"] + spent["plain_decode"])
    sealed_per_s = done / (spent["sealed_encode"] + spent["sealed_decode"])
    return {
        "rounds": done,
        "plain_bytes": len(plain[0][1]),
        "sealed_bytes": len(sealed[0][1]),
        "plain_per_s": round(plain_per_s, 1),
        "sealed_per_s": round(sealed_per_s, 1),
        "ratio": round(sealed_per_s / plain_per_s, 4),
        **{f"{name}_us": round(1e6 * seconds / done, 1) for name, seconds in spent.items()},
        "state_read_plain_us": round(1e6 * state_plain_s / done, 1),
        "state_read_sealed_us": round(1e6 * state_sealed_s / done, 1),
        "state_read_ratio": round(state_plain_s / state_sealed_s, 4),
        "kek_wrap_us": round(1e6 * wrap_s / done, 1),
        "new_data_key_ms": {
            "p50": round(statistics.median(new_keys), 2),
            "p99": round(percentile(new_keys, 99), 2),
        },
    }


async def service(
    bootstrap: str, work: Path, name: str, count: int, keys_ahead: bool, profile_to: Path | None
) -> dict[str, Any]:
    """The referrals worker alone taking ``count`` inbound submissions offered at once."""
    stack = Stack(bootstrap, f"bench-{name}.", work / name, work / "logs", smtp_port=1)
    await stack.prepare()
    batch = submissions(name, count, date.today())
    sealer = stack.sealer(["referral"])
    await sealer.start()
    try:
        if keys_ahead:  # every referral's data key on the keys topic before the worker starts
            subjects = [f"referral:{s.referral_id}" for s in batch]
            for start in range(0, count, 500):
                await asyncio.gather(*(sealer.store_for(s).ensure(s) for s in subjects[start : start + 500]))
        records = [await s.record(sealer, signing_keys=stack.signing_keys) for s in batch]  # before the clock
    finally:
        await sealer.stop()
    stack.start((WORKER,))
    try:
        await asyncio.to_thread(stack.wait_until_ready)
        return await _offer(stack, records, [s.referral_id for s in batch], profile_to)
    finally:
        await asyncio.to_thread(stack.stop)


async def _offer(
    stack: Stack, records: list[Record], ids: list[str], profile_to: Path | None
) -> dict[str, Any]:
    assessed: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    partitions = [
        TopicPartition(stack.prefix + REFERRAL_EVENTS.name, p) for p in range(REFERRAL_EVENTS.partitions)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)

    async def follow() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=20, max_records=5000)
            now = time.time()
            for batch in batches.values():
                for record in batch:
                    types = [v for k, v in record.headers or () if k == "ce_type"]
                    if record.key and types == [ReferralAssessed.event_type.encode()]:
                        assessed.setdefault(record.key.decode(), now)

    producer = make_producer(stack.bootstrap, client_id="bench-inbound", linger_ms=1)
    await producer.start()
    spy = Spy(stack.processes[WORKER].pid, profile_to) if profile_to and PY_SPY.exists() else None
    following = asyncio.create_task(follow())
    try:
        if spy is not None:
            spy.start()
        started = time.time()
        topic = inbound_topic(stack.prefix)
        futures = [await producer.send(topic, v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
        complete = await _until_count(lambda: len(assessed), len(ids), seconds=max(300.0, len(ids) / 10))
        collapsed = spy.stop() if spy is not None else None
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await producer.stop()
        await consumer.stop()
    times = [assessed[r] for r in ids if r in assessed]
    result: dict[str, Any] = {
        "referrals": len(ids),
        "completed": len(times),
        "complete": complete,
        "per_s": round(len(times) / (max(times) - started), 1),
        "sustained_per_s": round(sustained_rate(times), 1),
        "elapsed_s": round(max(times) - started, 3),
    }
    if spy is not None:
        result["worker_cpu_pct_of_core"] = round(100 * spy.cpu_s / spy.wall_s, 1)
        result["worker_cpu_ms_per_referral"] = round(1000 * spy.cpu_s / len(ids), 3)
    if spy is not None and collapsed is not None:
        hit, total = share(collapsed, sealing_frame)
        result["sealing_samples"] = hit
        result["busy_samples"] = total
        if total:
            result["sealing_pct_of_cpu"] = round(100 * hit / total, 1)
            result["sealing_cpu_ms_per_referral"] = round(1000 * spy.cpu_s * hit / total / len(ids), 3)
    return result


async def _until_count(count: Callable[[], int], target: int, seconds: float, stall_s: float = 60.0) -> bool:
    """Until ``count()`` reaches ``target``; gives up after ``seconds``, or ``stall_s`` without progress."""
    deadline = time.monotonic() + seconds
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now >= target:
            return True
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return False
        await asyncio.sleep(0.1)
    return False
