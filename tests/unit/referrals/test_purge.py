"""The inbound purge deletes only what the referrals group has committed past, and survives failures."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata

from services.referrals.purge import InboundPurger

INBOUND = "t1.circles.referrals.inbound.v1"


class Admin:
    def __init__(self, committed: dict[TopicPartition, int]) -> None:
        self.committed = committed
        self.deleted: list[dict[TopicPartition, int]] = []
        self.down = False

    async def list_consumer_group_offsets(self, group_id: str) -> dict[TopicPartition, Any]:
        if self.down:
            raise KafkaConnectionError()
        assert group_id == "t1.circles-referrals"
        return {tp: OffsetAndMetadata(offset, "") for tp, offset in self.committed.items()}

    async def delete_records(self, records: dict[TopicPartition, Any]) -> dict[TopicPartition, int]:
        asked = {tp: r.before_offset for tp, r in records.items()}
        self.deleted.append(asked)
        return asked


def purger(admin: Admin) -> InboundPurger:
    purge = InboundPurger("127.0.0.1:9", "t1.circles-referrals", INBOUND)
    purge._admin = admin
    return purge


async def test_deletes_up_to_the_committed_offsets_of_the_inbound_topic_only() -> None:
    p0, p1 = TopicPartition(INBOUND, 0), TopicPartition(INBOUND, 1)
    commands = TopicPartition("t1.circles.referrals.commands.v1", 0)
    admin = Admin({p0: 5, p1: 0, commands: 9})
    purge = purger(admin)
    assert await purge.purge() == {p0: 5}
    assert await purge.purge() == {}  # nothing new committed: no request
    admin.committed[p0], admin.committed[p1] = 7, 2
    assert await purge.purge() == {p0: 7, p1: 2}
    assert admin.deleted == [{p0: 5}, {p0: 7, p1: 2}]


async def test_a_failure_is_left_for_the_next_round() -> None:
    p0 = TopicPartition(INBOUND, 0)
    admin = Admin({p0: 3})
    admin.down = True
    purge = purger(admin)
    assert await purge.purge() == {}
    admin.down = False
    assert await purge.purge() == {p0: 3}
