"""Which dead letters replay may republish, and where to: only back to the topic they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.ops.deadletters import destination, resolve
from services.runtime.deadletter import VALUE_DROPPED, dead_letter_headers, original_headers


@dataclass
class Record:
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def dead(topic: str) -> Record:
    original = [("ce_id", b"e-1"), ("ce_type", b"circles.volunteer.change.v1")]
    return Record(
        dead_letter_headers(
            original, error="no volunteer v-1", service="matching", topic=topic, partition=1, offset=5
        )
    )


def test_replay_goes_back_to_the_original_topic_under_the_same_prefix() -> None:
    spec = resolve("circles.volunteers.commands.v1")
    assert destination(spec, "t1.", dead("t1.circles.volunteers.commands.v1")) == (
        "t1.circles.volunteers.commands.v1",
        "",
    )


def test_unknown_or_foreign_origins_are_skipped_with_a_reason() -> None:
    spec = resolve("circles.volunteers.commands.v1")
    assert destination(spec, "", Record([("ce_id", b"e-1")]))[0] is None
    target, why = destination(spec, "", dead("circles.matching.inbox.v1"))
    assert target is None and "circles.matching.inbox.v1" in why
    assert destination(spec, "t1.", dead("t2.circles.volunteers.commands.v1"))[0] is None


def test_a_dead_letter_without_its_value_is_not_replayed() -> None:
    spec = resolve("circles.volunteers.commands.v1")
    record = dead("circles.volunteers.commands.v1")
    record.headers.append((VALUE_DROPPED, b"1800000"))
    target, why = destination(spec, "", record)
    assert target is None and "1800000 bytes" in why


def test_replayed_headers_are_the_original_ones() -> None:
    record = dead("circles.volunteers.commands.v1")
    assert original_headers(record.headers) == [
        ("ce_id", b"e-1"),
        ("ce_type", b"circles.volunteer.change.v1"),
    ]
