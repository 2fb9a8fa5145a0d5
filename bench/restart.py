"""Restart of the referrals worker holding 100,000 referrals of state, until it is ready (``/ready`` 200).

The state is built by the worker itself: the benchmark produces 100,000 ``SubmitReferral`` commands (what
the partner API produces for a POST: personal fields sealed under a new data key per referral, the key
written to the referral keys topic first) to its commands topic and waits until its state changelog holds
a record for each. So a restarted worker reads 100,000 sealed state records (opened on first use) and
the 100,000 data key records of its keys topic (unwrapped on first use).

Then, several times: stop the worker (SIGTERM, a clean leave of the group) or kill it (SIGKILL, a crash:
the group still counts the dead member until its session times out), start it again and time from the
start of the new process to ``/ready`` answering 200 (polled every 20 ms). The worker's own log gives the
part spent reading the changelog (``recovery_seconds`` of ``partitions_assigned``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.stack import BenchProcess, Stack
from bench.workload import submissions
from schemas.envelope import Envelope
from schemas.events.referrals import SubmitReferral
from schemas.topics import REFERRALS_COMMANDS, REFERRALS_STATE
from services.protection.codec import encode_record
from services.runtime.kafka import producer as make_producer

WORKER = "referrals-worker"


async def build_state(stack: Stack, count: int) -> dict[str, Any]:
    """Start the worker alone and have it take ``count`` submissions; returns how long that took."""
    await stack.prepare()
    stack.start((WORKER,))
    await asyncio.to_thread(stack.wait_until_ready)
    producer = make_producer(stack.bootstrap, client_id="bench-restart", linger_ms=5)
    sealer = stack.sealer(["referral"])
    await producer.start()
    await sealer.start()
    topic = stack.prefix + REFERRALS_COMMANDS.name
    started = time.monotonic()
    try:
        for chunk in range(0, count, 2_000):
            commands = []
            for submission in submissions("restart", min(2_000, count - chunk), date.today(), start=chunk):
                command = SubmitReferral(
                    referral_id=uuid.UUID(submission.referral_id),
                    agency_id=submission.agency_id,
                    submission=submission.event,
                    fingerprint=submission.event.fingerprint(),
                    received_at=datetime.now(UTC),
                )
                envelope = Envelope.for_event(
                    command, source="/circles/referrals", correlation_id=f"bench-{submission.referral_id}"
                )
                commands.append(encode_record(command, envelope, sealer))  # the data key is acked first
            futures = [
                await producer.send(topic, value, key=key, headers=headers)
                for key, value, headers in await asyncio.gather(*commands)
            ]
            await asyncio.gather(*futures)
    finally:
        await sealer.stop()
        await producer.stop()
    produced_s = time.monotonic() - started
    await _changelog_holds(stack, count)
    built_s = time.monotonic() - started
    return {
        "referrals": count,
        "commands_produced_s": round(produced_s, 1),
        "state_built_s": round(built_s, 1),
        "worker_rate_per_s": round(count / built_s, 1),
    }


async def _changelog_holds(stack: Stack, count: int, seconds: float = 900) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(stack.prefix + REFERRALS_STATE.name, p) for p in range(REFERRALS_STATE.partitions)
        ]
        deadline = time.monotonic() + seconds
        while sum((await consumer.end_offsets(partitions)).values()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the referrals worker did not record {count} referrals in {seconds}s")
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


def restart(stack: Stack, how: str, seconds: float = 120) -> dict[str, Any]:
    """``how``: "stop" (SIGTERM) or "kill" (SIGKILL). Returns the time to ready and its recovery part."""
    process = stack.processes[WORKER]
    if how == "kill":
        process.kill()
    else:
        process.stop()
    logged = process.log_path.stat().st_size
    url = f"http://127.0.0.1:{process.env['CIRCLES_HEALTH_PORT']}/ready"
    started = time.monotonic()
    process.start()
    answering: float | None = None
    with httpx.Client(timeout=1.0) as client:
        while (status := _status(client, url)) != 200:
            if answering is None and status is not None:
                answering = time.monotonic() - started
            if time.monotonic() - started > seconds or not process.alive():
                raise RuntimeError(f"{WORKER} not ready {seconds}s after a restart:\n{process.tail()}")
            time.sleep(0.02)
    ready_s = time.monotonic() - started
    assigned = _assigned(process, logged)
    return {
        "how": how,
        "ready_s": round(ready_s, 3),
        "probe_answering_s": round(answering if answering is not None else ready_s, 3),
        "recovered_records": assigned.get("recovered_records"),
        "recovery_s": assigned.get("recovery_seconds"),
    }


def _status(client: httpx.Client, url: str) -> int | None:
    try:
        return client.get(url).status_code
    except httpx.HTTPError:
        return None


def _assigned(process: BenchProcess, offset: int) -> dict[str, Any]:
    """The worker's ``partitions_assigned`` log line written after ``offset``."""
    with process.log_path.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            if '"partitions_assigned"' in line:
                entry: dict[str, Any] = json.loads(line)
                return entry
    return {}


def state_stack(bootstrap: str, work: Path) -> Stack:
    return Stack(
        bootstrap, f"bench-restart-{int(time.time())}.", work / "restart", work / "logs", smtp_port=1
    )
