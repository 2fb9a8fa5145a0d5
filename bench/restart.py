"""Restart of the referrals worker and of the partner API holding 100,000 (and 1,000,000) referrals of
state, until each is ready (``/ready`` 200).

The state is written straight to the worker's changelog topic (``build_state``: what the worker writes for
a submission, sealed, with one data key per referral on the keys topic), and the first start of the worker
and of the API builds their on-disk copies from it (the worker's tables, the API's read model, and each
one's copy of the keys topic). A restarted process then opens its copies and reads each topic only from
its checkpoint.

Then, several times: stop the process (SIGTERM; for the worker a clean leave of the group) or kill it
(SIGKILL; for the worker a crash: the group still counts the dead member until its session times out),
start it again and time from the start of the new process to ``/ready`` answering 200 (polled every
20 ms). The process's own log gives what it read at the start: the worker's changelog records
(``recovered_records``, ``recovery_seconds`` of ``partitions_assigned``), the key records of the keys topic
(``data_keys_ready``) and the API's state records (``api_ready``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.encryption import command_for
from bench.stack import BenchProcess, Stack
from bench.workload import submissions
from schemas.personal import personal_paths
from schemas.topics import REFERRALS_STATE, SUBJECT_KEYS
from services.protection.keks import LocalKeks
from services.protection.keystore import KeyRecord
from services.protection.sealing import DataKey, seal
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import ReferralEntry, submit
from services.runtime.kafka import producer as make_producer

WORKER = "referrals-worker"
API = "referrals-api"
RESTARTED = (WORKER, API)
TEMPLATES = 50


async def build_state(stack: Stack, count: int) -> dict[str, Any]:
    """Write ``count`` referrals of state straight to the worker's changelog (and their data keys to the
    keys topic), then start the worker and the partner API and let them build their stores from them;
    returns how long each took.

    Each value is what the worker writes for a submission: a ``ReferralEntry`` made by the domain's
    ``submit`` (a few templates, each copied under a new referral id), its personal fields sealed under a
    data key of its own, wrapped by the stack's KEK as the key store does. Far faster than having the
    worker take a million submissions, and the same bytes for a restart to read."""
    await stack.prepare()
    keks = LocalKeks.from_file(stack.kek_file)
    policy, now = load_policy(), datetime.now(UTC)
    templates = []
    for submission in submissions("restart", TEMPLATES, date.today()):
        command, envelope = command_for(submission)
        entry = submit(None, command, envelope.id, policy, now, "http://bench.invalid/referral").entry
        assert entry is not None and entry.record is not None
        templates.append((entry.model_dump_json(), str(entry.record.referral_id)))
    paths = personal_paths(ReferralEntry)
    producer = make_producer(stack.bootstrap, client_id="bench-restart", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    keys_topic = stack.prefix + SUBJECT_KEYS["referral"].name
    state_topic = stack.prefix + REFERRALS_STATE.name
    started = time.monotonic()
    try:
        for chunk in range(0, count, 5_000):
            keys, states = [], []
            for n in range(chunk, min(chunk + 5_000, count)):
                text, template_id = templates[n % TEMPLATES]
                referral_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack.prefix}{n}"))
                subject = f"referral:{referral_id}"
                raw, dek_id = os.urandom(32), uuid.uuid4().hex
                wrapped = keks.wrap(raw, subject.encode())
                key_record = KeyRecord(
                    subject=subject,
                    kek_id=wrapped.kek_id,
                    wrapped=base64.b64encode(wrapped.blob).decode(),
                    created_at=now,
                )
                keys.append((dek_id.encode(), key_record.model_dump_json().encode()))
                data = seal(
                    json.loads(text.replace(template_id, referral_id)), paths, DataKey(dek_id, subject, raw)
                )
                states.append((referral_id.encode(), json.dumps(data, separators=(",", ":")).encode()))
            await asyncio.gather(*[await producer.send(keys_topic, value, key=key) for key, value in keys])
            await asyncio.gather(*[await producer.send(state_topic, value, key=key) for key, value in states])
    finally:
        await producer.stop()
    written_s = time.monotonic() - started
    stack.start(RESTARTED)
    await asyncio.to_thread(stack.wait_until_ready, 3600)
    built_s = time.monotonic() - started
    return {
        "referrals": count,
        "state_written_s": round(written_s, 1),
        "store_built_s": round(built_s - written_s, 1),
        "state_built_s": round(built_s, 1),
    }


def ready_url(stack: Stack, name: str) -> str:
    port = stack.ports["api"] if name == API else stack.processes[name].env["CIRCLES_HEALTH_PORT"]
    return f"http://127.0.0.1:{port}/ready"


def restart(stack: Stack, how: str, seconds: float = 120, name: str = WORKER) -> dict[str, Any]:
    """``how``: "stop" (SIGTERM) or "kill" (SIGKILL) the process ``name``. Returns the time to ready and
    what the process read at its start."""
    process = stack.processes[name]
    if how == "kill":
        process.kill()
    else:
        process.stop()
    logged = process.log_path.stat().st_size
    url = ready_url(stack, name)
    started = time.monotonic()
    process.start()
    answering: float | None = None
    with httpx.Client(timeout=1.0) as client:
        while (status := _status(client, url)) != 200:
            if answering is None and status is not None:
                answering = time.monotonic() - started
            if time.monotonic() - started > seconds or not process.alive():
                raise RuntimeError(f"{name} not ready {seconds}s after a restart:\n{process.tail()}")
            time.sleep(0.02)
    ready_s = time.monotonic() - started
    started_log = _logged(process, logged)
    assigned = started_log.get("partitions_assigned", {})
    return {
        "process": name,
        "how": how,
        "ready_s": round(ready_s, 3),
        "probe_answering_s": round(answering if answering is not None else ready_s, 3),
        "recovered_records": assigned.get("recovered_records"),
        "recovery_s": assigned.get("recovery_seconds"),
        "key_records_read": started_log.get("data_keys_ready", {}).get("read"),
        "state_records_read": started_log.get("api_ready", {}).get("read"),
    }


def _status(client: httpx.Client, url: str) -> int | None:
    try:
        return client.get(url).status_code
    except httpx.HTTPError:
        return None


LOGGED = ("partitions_assigned", "data_keys_ready", "api_ready")


def _logged(process: BenchProcess, offset: int) -> dict[str, dict[str, Any]]:
    """The first of each ``LOGGED`` line the process wrote after ``offset``, by event."""
    found: dict[str, dict[str, Any]] = {}
    with process.log_path.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            for event in LOGGED:
                if f'"{event}"' in line and event not in found:
                    found[event] = json.loads(line)
    return found


def state_stack(bootstrap: str, work: Path, size: int) -> Stack:
    name = f"restart-{size}"
    return Stack(bootstrap, f"bench-{name}-{int(time.time())}.", work / name, work / "logs", smtp_port=1)
