"""Who consumes what through a consumer group: the catalogue, less the topics read whole as views.

The catalogue's ``consumers`` also names services that read a compacted registry into memory without a
consumer group (agencies, coordinator accounts). Those have no committed offsets, so counting them would
show a lag that never shrinks. A unit test holds this list to the workers' actual routes.
"""

from __future__ import annotations

from schemas.topics import (
    AGENCIES,
    BY_NAME,
    COORDINATOR_ACCOUNTS,
    COORDINATOR_RECORDS,
    TOPICS,
    Service,
    TopicSpec,
)

READ_AS_VIEWS: frozenset[str] = frozenset(
    {AGENCIES.name, COORDINATOR_ACCOUNTS.name, COORDINATOR_RECORDS.name}
)
REPLAY_GROUP = "circles-ops-replay"
"""The consumer group (under the topic prefix) whose offsets on each ``.dlq`` topic mark what was replayed."""


def consumed_topics(service: Service) -> tuple[TopicSpec, ...]:
    """The topics ``service``'s workers consume in their consumer group, in catalogue order."""
    return tuple(
        spec
        for spec in TOPICS
        if service in spec.consumers
        and spec.events
        and not spec.dead_letter
        and spec.name not in READ_AS_VIEWS
    )


SERVICES: tuple[Service, ...] = tuple(service for service in Service if consumed_topics(service))
"""Services with stream workers (a consumer group each)."""

GROUP_TOPICS: tuple[TopicSpec, ...] = tuple(
    spec for spec in TOPICS if any(spec in consumed_topics(service) for service in SERVICES)
)
"""Every topic some group consumes, once each."""

DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = tuple(spec for spec in TOPICS if spec.dead_letter)


def group_id(service: Service | str, prefix: str = "") -> str:
    """As ``StreamWorker`` names it."""
    return f"{prefix}circles-{Service(service).value}"


def source_of(dead_letter_topic: str) -> TopicSpec | None:
    """The catalogue topic whose dead letters go to ``dead_letter_topic`` (both without prefix)."""
    if not dead_letter_topic.endswith(".dlq"):
        return None
    return BY_NAME.get(dead_letter_topic.removesuffix(".dlq"))
