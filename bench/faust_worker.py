"""The referrals worker's shape on faust-streaming 0.15.3, as it was before we replaced faust (commit 69302e3:
``services/runtime/faust_app.py``): the evidence behind docs/architecture.md "Why not faust".

Runs in its own virtual environment with only faust-streaming (``bench/faust_crash.py`` makes it), so it
imports nothing of the project. One agent (``concurrency=1``) takes the commands topic in batches; for each
new referral it stages a state entry and a decision event; the batch's unit of work sends the decisions and
waits for every acknowledgement, *then* writes the table (whose changelog faust produces and flushes before
it commits offsets). Settings as ours were: ``at_least_once``, ``acks=all``, a commit every second, in-memory
store recovered from the changelog, and a crashing supervisor so that an agent error takes the worker down.

Environment: ``FAUST_BOOTSTRAP`` (host:port), ``FAUST_PREFIX`` (topic and group prefix), ``FAUST_DATA``
(faust's data folder), ``FAUST_RAISE_AT`` (optional: raise inside the batch holding the command with this
sequence number, once: the "crash and retry" path), ``FAUST_WORK_MS`` and ``FAUST_STATE_BYTES`` (the CPU
time and state size of one referral, as ours).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import faust
import mode
from aiokafka.partitioner import murmur2

PREFIX = os.environ.get("FAUST_PREFIX", "")
PARTITIONS = 3
COMMANDS = PREFIX + "commands"
DECISIONS = PREFIX + "decisions"
CHANGELOG = PREFIX + "referrals-state"
RAISE_AT = int(os.environ.get("FAUST_RAISE_AT", "-1"))
WORK_S = float(os.environ.get("FAUST_WORK_MS", "1.5")) / 1000
"""CPU time per referral, as ours takes (policy, validation, sealing: about 740 a second)."""
PADDING = "x" * int(os.environ.get("FAUST_STATE_BYTES", "2000"))
"""A referral's state record is a couple of kilobytes (sealed personal fields, history)."""
RAISED = Path(os.environ.get("FAUST_DATA", ".")) / "raised"

app = faust.App(
    PREFIX + "circles-referrals",
    broker=f"kafka://{os.environ.get('FAUST_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    processing_guarantee="at_least_once",
    producer_acks=-1,
    producer_linger=0.002,
    key_serializer="raw",
    value_serializer="raw",
    topic_allow_declare=False,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    broker_commit_every=10_000,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
    broker_rebalance_timeout=30.0,
    table_standby_replicas=0,
    agent_supervisor=mode.CrashingSupervisor,
    web_enabled=False,
    datadir=os.environ.get("FAUST_DATA", "faust-data"),
    worker_redirect_stdouts=False,
)


class KeyedTable(faust.Table):  # type: ignore[misc]
    """Changelog records go to their key's own partition (faust would use the current event's)."""

    def partition_for_key(self, key: Any) -> int | None:
        return int(murmur2(bytes(key)) & 0x7FFFFFFF) % PARTITIONS


commands = app.topic(COMMANDS, partitions=PARTITIONS, key_serializer="raw", value_serializer="raw")
changelog = app.topic(
    CHANGELOG, partitions=PARTITIONS, key_serializer="raw", value_serializer="json", compacting=True
)
_table = KeyedTable(app, name="referrals", default=None, partitions=PARTITIONS, changelog_topic=changelog)
_table.key_serializer, _table.value_serializer = "raw", "json"  # as services/runtime/faust_app.py did
table = app.tables.add(_table)


@app.agent(commands, concurrency=1)  # type: ignore[untyped-decorator]
async def decide(stream: Any) -> None:
    async for batch in stream.take_events(500, within=0.005):
        writes: dict[bytes, dict[str, Any]] = {}
        sends = []
        for event in batch:
            command = json.loads(event.message.value)
            if command["seq"] == RAISE_AT and not RAISED.exists():
                RAISED.write_text("raised")
                raise RuntimeError(f"injected failure at command {RAISE_AT}")
            key = command["referral_id"].encode()
            if table.get(key) is not None or key in writes:
                continue  # decided before: a redelivered command
            started = time.perf_counter()
            while time.perf_counter() - started < WORK_S:  # the assessment's CPU time
                pass
            writes[key] = {"status": "eligible", "seq": command["seq"], "record": PADDING}
            decision = json.dumps({"referral_id": command["referral_id"], "decided": command["seq"]}).encode()
            sends.append(await app.producer.send(DECISIONS, key, decision, None, None, None))
        if sends:
            await asyncio.gather(*sends)
        for key, value in writes.items():
            table[key] = value


class Worker(faust.Worker):  # type: ignore[misc]
    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        print("worker_ready", flush=True)  # tables recovered, consuming


if __name__ == "__main__":
    Worker(
        app, loglevel="warning", quiet=True, override_logging=False, redirect_stdouts=False
    ).execute_from_commandline()
