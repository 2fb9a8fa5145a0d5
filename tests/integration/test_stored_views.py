"""A whole compacted topic on disk (``StoredView``) on the real broker: a restart reads only what was
written since the copy's checkpoint; a tombstone read on the way deletes the key from the copy; a copy
that has not followed the topic for longer than compaction keeps tombstones is read again whole."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.topics import REFERRAL_KEYS
from services.runtime.kafka import create_topics
from services.runtime.tables import STALE_AFTER_S
from services.runtime.views import StoredView

pytestmark = pytest.mark.integration


async def write(bootstrap: str, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def caught_up(bootstrap: str, topic: str, directory: Path) -> StoredView:
    view = StoredView(
        bootstrap,
        topic,
        REFERRAL_KEYS.partitions,
        directory=directory,
        client_id="tests-stored-view",
        indexes={"first": lambda raw: raw[:1].decode()},
        forget_deleted=True,
    )
    await view.start()
    await view.caught_up(stalled_s=30)  # what the partner API waits on before it is ready
    return view


async def test_a_restart_reads_only_what_was_written_since_the_checkpoint(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    await create_topics(kafka_bootstrap, [REFERRAL_KEYS], prefix=prefix)
    topic = prefix + REFERRAL_KEYS.name
    await write(kafka_bootstrap, topic, [(f"k{n}", f"a{n}".encode()) for n in range(50)])
    view = await caught_up(kafka_bootstrap, topic, tmp_path)
    assert view.read == 50 and len(view) == 50
    await view.stop()

    await write(kafka_bootstrap, topic, [("k1", None), ("k2", b"b2"), ("new", b"b-new")])
    view = await caught_up(kafka_bootstrap, topic, tmp_path)
    try:
        assert view.read == 3  # from the checkpoint, not the 53 records of the topic
        assert len(view) == 50
        assert view.get("k1") is None and view.get("k2") == b"b2" and view.get("k3") == b"a3"
        assert {key for _, key in view.indexed("first", equal="b")} == {"k2", "new"}
        await write(kafka_bootstrap, topic, [("k3", None)])  # while it follows the topic
        async with asyncio.timeout(60):
            await view.sync()
        assert view.get("k3") is None and len(view) == 49
    finally:
        await view.stop()


async def test_a_copy_that_stopped_following_long_ago_is_read_again_whole(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_topics(kafka_bootstrap, [REFERRAL_KEYS], prefix=prefix)
    topic = prefix + REFERRAL_KEYS.name
    await write(kafka_bootstrap, topic, [(f"k{n}", b"v") for n in range(10)])
    view = await caught_up(kafka_bootstrap, topic, tmp_path)
    await view.stop()
    await write(kafka_bootstrap, topic, [("k0", None)])
    later = time.time() + STALE_AFTER_S + 60
    monkeypatch.setattr(time, "time", lambda: later)
    view = await caught_up(kafka_bootstrap, topic, tmp_path)
    try:
        assert view.read == 11  # a tombstone it never saw may have been compacted away: all again
        assert len(view) == 9 and view.get("k0") is None
        checkpoint = view.store.checkpoint(0)
        assert checkpoint is not None and checkpoint[1] >= later - 5  # at the end now: fresh again
    finally:
        await view.stop()
