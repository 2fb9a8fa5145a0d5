"""Reading topics in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from services.runtime.kafka_security import security_options


async def consume(bootstrap: str, topic: str, count: int, seconds: float = 30.0) -> list[Any]:
    """At least ``count`` records of ``topic`` from the beginning, or TimeoutError after ``seconds``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, **security_options()
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(seconds):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def consume_all(bootstrap: str, topic: str, seconds: float = 30.0) -> list[Any]:
    """Every record of ``topic`` written before the call (up to the end offsets read at the start)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, **security_options()
    )
    await consumer.start()
    records: list[Any] = []

    async def fetch() -> None:
        for batch in (await consumer.getmany(timeout_ms=100)).values():
            records.extend(batch)

    try:
        async with asyncio.timeout(seconds):
            while not consumer.assignment():
                await fetch()
            ends = await consumer.end_offsets(list(consumer.assignment()))
            for tp, end in ends.items():
                while await consumer.position(tp) < end:
                    await fetch()
    finally:
        await consumer.stop()
    return records


def wait_drained(bootstrap: str, prefix: str, *services: str, seconds: float = 60.0) -> None:
    """The positive marker that a duplicate would have shown by now: each named service's consumer group has
    committed past every record of every topic it reads, in one reading of committed and end offsets.

    A worker writes its outputs before it commits its input (the commit rule), and performs a message's
    delivery before it commits the request: so once the group is at lag 0 on all its topics at once, every
    output and effect of every record that was on those topics before this call has happened."""
    from services.ops.status import pipeline_status

    deadline = time.monotonic() + seconds
    while True:
        status = asyncio.run(pipeline_status(bootstrap, prefix))
        lags = {name: status.service(name) for name in services}
        if all(service.lag == 0 for service in lags.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not drained within {seconds}s: { {n: s.lag for n, s in lags.items()} }")
        time.sleep(0.2)
