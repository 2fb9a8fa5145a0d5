"""Purging the inbound topic once the referrals worker is past it.

Agency systems produce submissions to ``circles.referrals.inbound.v1`` in the clear: Kafka is their
transport, and they hold no data keys. Once the worker has committed past a record, that record is either
a sealed ``SubmitReferral`` command or a sealed dead letter, acknowledged by the broker (the worker commits
offsets only after its outputs are acknowledged), so the plain copy is no longer needed. The worker then
deletes the records before its group's committed offsets (the admin API's DeleteRecords), every
``CIRCLES_INBOUND_PURGE_INTERVAL_S``.

Why not a short ``retention.ms`` instead: retention deletes by age, whether or not the worker has read the
record; a worker down for longer than the retention would lose referrals. Deleting up to the committed
offset can never remove an unprocessed submission, and removes processed ones within a minute however long
the retention is (the 7-day retention stays as a backstop). DeleteRecords makes the records unreadable at
once; the broker frees the disk when the whole segment lies below the new start, so the topic has 1-hour
segments (the catalogue). Any worker of the group may purge every partition: the committed offsets are the
group's, and deleting twice up to the same offset is harmless. The worker's principal needs the Delete
operation on the topic (Kafka ACL) where ACLs are on.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from services.runtime.kafka_security import security_options
from services.runtime.logs import get_logger

log = get_logger(__name__)


class InboundPurger:
    def __init__(self, bootstrap_servers: str, group_id: str, topic: str) -> None:
        self.group_id = group_id
        self.topic = topic
        self._bootstrap = bootstrap_servers
        self._admin: Any = None
        self._start: dict[TopicPartition, int] = {}  # each partition's first readable offset, as we left it

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=f"{self.group_id}-purge", **security_options()
        )
        await self._admin.start()

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()

    async def purge(self) -> dict[TopicPartition, int]:
        """Delete what the group has committed past; returns the partitions purged and their new start.
        A failure is logged and left for the next round (the records stay until then, unread by no one)."""
        try:
            committed = await self._admin.list_consumer_group_offsets(self.group_id)
            wanted = {
                tp: meta.offset
                for tp, meta in committed.items()
                if tp.topic == self.topic and meta.offset > self._start.get(tp, 0)
            }
            if not wanted:
                return {}
            starts: dict[TopicPartition, int] = await self._admin.delete_records(
                {tp: RecordsToDelete(before_offset=offset) for tp, offset in wanted.items()}
            )
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning("inbound_purge_failed", error=type(error).__name__)
            return {}
        self._start.update(starts)
        log.info("inbound_purged", partitions={tp.partition: offset for tp, offset in sorted(starts.items())})
        return starts
