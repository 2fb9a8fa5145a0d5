"""The baseline: raw aiokafka, a producer process and a consumer process, on the same broker as the pipeline.

Every message is a copy of one inbound referral record (same value and CloudEvents headers, so the same
size), sent to a topic with as many partitions as the referral topics, with the services' producer settings
(acks=all, idempotent, linger 2 ms). The rate is messages / (last one consumed - first one sent): what one
produce→consume hop costs here, with nothing else done per message.

    python -m bench.baseline produce --bootstrap B --topic T --count N    (the producer side)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.workload import submissions
from schemas.topics import REFERRAL_PARTITIONS
from services.runtime.kafka import producer as make_producer


async def referral_record() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The pipeline's inbound record, byte for byte (as an agency system produces it: see bench.workload)."""
    return await submissions("baseline", 1, date.today())[0].record()


async def produce(bootstrap: str, topic: str, count: int) -> dict[str, float]:
    key, value, headers = await referral_record()
    producer = make_producer(bootstrap, client_id="bench-baseline")
    await producer.start()
    try:
        first = time.time()
        futures = [await producer.send(topic, value, key=key, headers=headers) for _ in range(count)]
        await asyncio.gather(*futures)
        return {"first_sent": first, "acknowledged": time.time()}
    finally:
        await producer.stop()


async def measure(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """One run on a new topic: start the consumer, start the producer process, consume ``count``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, REFERRAL_PARTITIONS, 1)])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p) for p in range(REFERRAL_PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        command = [sys.executable, "-m", "bench.baseline", "produce", "--bootstrap", bootstrap]
        producer = subprocess.Popen(  # noqa: ASYNC220 - started once, before the clock matters
            [*command, "--topic", topic, "--count", str(count)], stdout=subprocess.PIPE
        )
        received, size, last = 0, 0, 0.0
        while received < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                received += len(records)
                size = len(records[0].value) + sum(len(k) + len(v) for k, v in records[0].headers)
                last = time.time()
            if producer.poll() not in (None, 0):
                raise RuntimeError("the baseline producer failed")
        out, _ = await asyncio.to_thread(producer.communicate)
    finally:
        await consumer.stop()
    sent = json.loads(out)
    return {
        "messages": count,
        "message_bytes": size,
        "per_s": round(count / (last - sent["first_sent"]), 1),
        "produce_per_s": round(count / (sent["acknowledged"] - sent["first_sent"]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["produce"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(produce(args.bootstrap, args.topic, args.count))))


if __name__ == "__main__":
    main()
