"""The pipeline's health, from the catalogue and the broker alone: per service (consumer group
``<prefix>circles-<service>``) and consumed topic the committed and end offsets and the lag, the depth of the
topic's dead-letter queue, and the age of its newest event; and whether the group has live members.

One model (``PipelineStatus``) for ``circles ops status`` and the coordinator's operations page, so both show
the same numbers. Nothing here joins a group or reads a payload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import TopicPartition
from pydantic import BaseModel, Field

from schemas.topics import Service, TopicSpec
from services.ops.broker import Broker, GroupInfo
from services.ops.topology import GROUP_TOPICS, REPLAY_GROUP, SERVICES, consumed_topics, group_id


class PartitionLag(BaseModel):
    partition: int
    end_offset: int
    committed: int | None = Field(
        description="None: the group never committed here (it starts at the beginning)"
    )
    lag: int


class TopicState(BaseModel):
    """One topic, whoever consumes it."""

    topic: str = Field(description="Catalogue name, without the topic prefix")
    partitions: int
    end_offset: int = Field(description="Sum of the partitions' end offsets: every record ever written")
    retained: int = Field(description="Records still on the broker (end minus beginning offsets)")
    last_event_at: datetime | None
    last_event_age_s: float | None
    dead_letter_topic: str | None
    dead_letters: int = Field(description="Records in the dead-letter topic")
    dead_letters_pending: int = Field(description="Dead letters not yet replayed (circles ops dlq replay)")


class ConsumedTopic(BaseModel):
    """One topic as one service's group consumes it."""

    topic: str
    end_offset: int
    committed: int | None = Field(description="Sum of committed offsets; None if the group never committed")
    lag: int = Field(description="Records written and not yet processed by the group, over all partitions")
    partitions: list[PartitionLag]
    dead_letters: int
    dead_letters_pending: int
    last_event_age_s: float | None


class ServiceStatus(BaseModel):
    service: str
    group_id: str
    group_state: str = Field(
        description="Stable, Empty (no worker), PreparingRebalance, CompletingRebalance, Dead"
    )
    active_members: int
    lag: int
    dead_letters_pending: int
    topics: list[ConsumedTopic]


class PipelineStatus(BaseModel):
    taken_at: datetime
    topic_prefix: str
    services: list[ServiceStatus]
    topics: list[TopicState]
    problems: list[str] = Field(description="Workers missing and dead letters waiting, one line each")

    def service(self, name: str) -> ServiceStatus:
        for service in self.services:
            if service.service == name:
                return service
        raise LookupError(f"no service {name} in the status")

    def topic(self, name: str) -> TopicState:
        for topic in self.topics:
            if topic.topic == name:
                return topic
        raise LookupError(f"no topic {name} in the status")


async def pipeline_status(
    bootstrap_servers: str, prefix: str = "", *, now: datetime | None = None
) -> PipelineStatus:
    """Read the status from the broker (a second or so; wrap in a timeout for a page)."""
    async with Broker(bootstrap_servers) as broker:
        return await status_from(broker, prefix, now)


@dataclass(frozen=True)
class _Offsets:
    """Partitions and their beginning and end offsets, by catalogue topic name."""

    prefix: str
    layout: dict[str, list[TopicPartition]]
    beginnings: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]

    def of(self, spec_name: str) -> list[TopicPartition]:
        return self.layout[self.prefix + spec_name]

    def retained(self, tps: list[TopicPartition]) -> int:
        return sum(self.ends[tp] - self.beginnings[tp] for tp in tps)

    def after(self, tps: list[TopicPartition], committed: dict[TopicPartition, int]) -> int:
        """Records past the committed offsets (past the beginning where retention passed a commit)."""
        return sum(self.ends[tp] - max(self.beginnings[tp], committed.get(tp, 0)) for tp in tps)


async def status_from(broker: Broker, prefix: str = "", now: datetime | None = None) -> PipelineStatus:
    """The same from an open ``Broker``: a page polling every few seconds keeps one open."""
    names = [prefix + spec.name for spec in GROUP_TOPICS] + [prefix + spec.dlq for spec in GROUP_TOPICS]
    layout = await broker.partitions(names)
    beginnings, ends = await broker.offsets([tp for tps in layout.values() for tp in tps])
    offsets = _Offsets(prefix, layout, beginnings, ends)
    topic_tps = [tp for spec in GROUP_TOPICS for tp in offsets.of(spec.name)]
    newest = await broker.newest_timestamps({tp: ends[tp] for tp in topic_tps}, beginnings)
    groups = {service: group_id(service, prefix) for service in SERVICES}
    infos, committed = await _groups(broker, [*groups.values(), prefix + REPLAY_GROUP])
    replayed = committed[prefix + REPLAY_GROUP]
    taken_at = now or datetime.now(UTC)

    topics: dict[str, TopicState] = {}
    for spec in GROUP_TOPICS:
        tps, dlq_tps = offsets.of(spec.name), offsets.of(spec.dlq)
        stamps = [newest[tp] for tp in tps if tp in newest]
        last = datetime.fromtimestamp(max(stamps) / 1000, UTC) if stamps else None
        topics[spec.name] = TopicState(
            topic=spec.name,
            partitions=len(tps),
            end_offset=sum(ends[tp] for tp in tps),
            retained=offsets.retained(tps),
            last_event_at=last,
            last_event_age_s=round((taken_at - last).total_seconds(), 3) if last else None,
            dead_letter_topic=spec.dlq,
            dead_letters=offsets.retained(dlq_tps),
            dead_letters_pending=offsets.after(dlq_tps, replayed),
        )
    services = [
        _service(service, infos[groups[service]], committed[groups[service]], topics, offsets)
        for service in SERVICES
    ]
    return PipelineStatus(
        taken_at=taken_at,
        topic_prefix=prefix,
        services=services,
        topics=list(topics.values()),
        problems=_problems(services, topics),
    )


async def _groups(
    broker: Broker, group_ids: list[str]
) -> tuple[dict[str, GroupInfo], dict[str, dict[TopicPartition, int]]]:
    infos = await asyncio.gather(*(broker.group(group) for group in group_ids))
    offsets = await asyncio.gather(*(broker.committed(group) for group in group_ids))
    return dict(zip(group_ids, infos, strict=True)), dict(zip(group_ids, offsets, strict=True))


def _service(
    service: Service,
    info: GroupInfo,
    committed: dict[TopicPartition, int],
    topics: dict[str, TopicState],
    offsets: _Offsets,
) -> ServiceStatus:
    consumed = [_consumed(spec, topics[spec.name], committed, offsets) for spec in consumed_topics(service)]
    return ServiceStatus(
        service=service.value,
        group_id=group_id(service, offsets.prefix),
        group_state=info.state,
        active_members=info.members,
        lag=sum(topic.lag for topic in consumed),
        dead_letters_pending=sum(topic.dead_letters_pending for topic in consumed),
        topics=consumed,
    )


def _consumed(
    spec: TopicSpec, state: TopicState, committed: dict[TopicPartition, int], offsets: _Offsets
) -> ConsumedTopic:
    partitions = [
        PartitionLag(
            partition=tp.partition,
            end_offset=offsets.ends[tp],
            committed=committed.get(tp),
            lag=offsets.after([tp], committed),
        )
        for tp in offsets.of(spec.name)
    ]
    known = [p.committed for p in partitions if p.committed is not None]
    return ConsumedTopic(
        topic=spec.name,
        end_offset=state.end_offset,
        committed=sum(known) if known else None,
        lag=sum(p.lag for p in partitions),
        partitions=partitions,
        dead_letters=state.dead_letters,
        dead_letters_pending=state.dead_letters_pending,
        last_event_age_s=state.last_event_age_s,
    )


def no_worker(service: ServiceStatus) -> str:
    return f"{service.service}: no worker running (group {service.group_id} is {service.group_state})"


def dead_letters_waiting(topic: TopicState) -> str:
    return f"{topic.dead_letter_topic}: {topic.dead_letters_pending} dead letter(s) not replayed"


def _problems(services: list[ServiceStatus], topics: dict[str, TopicState]) -> list[str]:
    problems = [no_worker(service) for service in services if service.active_members == 0]
    problems += [dead_letters_waiting(topic) for topic in topics.values() if topic.dead_letters_pending]
    return problems
