"""Malformed Kafka records for the fuzz test: for any consumed topic, records that are not events of it.

Each kind breaks one thing a consumer relies on: the JSON, the field types, the CloudEvents headers
(missing, invalid, not UTF-8), the event type (unknown, or another topic's), the value (absent, not an
object, nested deeper than any parser recurses, near the broker's size limit); a third of the records
also have no key, and null values never have one (not on compacted topics: their broker refuses that).
Every record is checked here with the workers' own decoder (with and without data keys) to be undecodable for
its topic, so each one must end up dead-lettered.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.envelope import Envelope, Event, UndecodableRecord, decode, encode
from schemas.personal import personal_paths
from schemas.topics import EVENT_TYPES, Cleanup, TopicSpec, events_of
from services.protection.sealing import DataKey, open_sealed
from tests.samples import sample

Headers = list[tuple[str, bytes]]
HUGE = 1_000_000
"""Bytes of the largest value: the producer's and broker's default limit is 1 MiB per record."""


@dataclass(frozen=True)
class Malformed:
    kind: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    reasons: tuple[str, str]
    """Why the workers' decoder refuses it, without data keys and with them (sealed fields are opened
    before validation, so JSON is parsed otherwise): the ``dlq_error`` of its dead letters is one of them."""


def _valid(spec: TopicSpec, rng: random.Random) -> tuple[bytes, bytes, Headers, Event]:
    event_type = rng.choice(sorted(events_of(spec)))
    event = sample(EVENT_TYPES[event_type])
    envelope = Envelope.for_event(event, source="/tests/fuzz", correlation_id=f"fuzz-{rng.random()}")
    key, value, headers = encode(event, envelope)
    return key, value, headers, event


def _swap(headers: Headers, name: str, value: bytes | None) -> Headers:
    kept = [(n, v) for n, v in headers if n != name]
    return kept if value is None else [*kept, (name, value)]


def _wrong_types(value: bytes, rng: random.Random) -> bytes:
    data = json.loads(value)
    field = rng.choice(sorted(data))
    if rng.random() < 0.3:
        del data[field]  # a missing field (invalid when required; checked by the caller)
    else:
        data[field] = rng.choice([{"nested": {"deep": [1, 2]}}, 12345.5, True, "x" * 3, [None], -1])
    return json.dumps(data).encode()


def _bad_json(value: bytes, rng: random.Random) -> bytes:
    return rng.choice(
        [
            value[: rng.randrange(1, len(value))],
            value.replace(b'"', b"'", 1),
            b"\xff\xfe" + value,
            b"{" * 3 + b"}",
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
            b"",
            b'{"a": NaN}',
        ]
    )


def _kinds(spec: TopicSpec) -> dict[str, Callable[[random.Random], tuple[bytes | None, Headers]]]:
    def with_valid(change: Callable[[bytes, Headers, random.Random], tuple[bytes | None, Headers]]) -> Any:
        def make(rng: random.Random) -> tuple[bytes | None, Headers]:
            _, value, headers, _ = _valid(spec, rng)
            return change(value, headers, rng)

        return make

    foreign = sorted(set(EVENT_TYPES) - set(events_of(spec)))
    return {
        "bad_json": with_valid(lambda v, h, r: (_bad_json(v, r), h)),
        "wrong_types": with_valid(lambda v, h, r: (_wrong_types(v, r), h)),
        "no_headers": with_valid(lambda v, h, r: (v, [])),
        "header_missing": with_valid(
            lambda v, h, r: (v, _swap(h, r.choice(["ce_id", "ce_type", "ce_source", "ce_time"]), None))
        ),
        "header_invalid": with_valid(
            lambda v, h, r: (
                v,
                _swap(
                    h,
                    *r.choice(
                        [
                            ("ce_id", b"not-a-uuid"),
                            ("ce_time", b"yesterday"),
                            ("ce_time", b"2026-11-24T10:00:00"),  # no time zone
                            ("ce_specversion", b"0.3"),
                            ("ce_causationid", b"42"),
                            ("content-type", b"text/plain"),
                        ]
                    ),
                ),
            )
        ),
        "header_not_utf8": with_valid(lambda v, h, r: (v, _swap(h, "ce_id", b"\xff\xfe\xfd"))),
        "unknown_type": with_valid(lambda v, h, r: (v, _swap(h, "ce_type", b"circles.nothing-such.v1"))),
        "other_topics_type": with_valid(lambda v, h, r: (v, _swap(h, "ce_type", r.choice(foreign).encode()))),
        "null_value": with_valid(lambda v, h, r: (None, h)),
        "not_an_object": with_valid(lambda v, h, r: (r.choice([b"[]", b"42", b'"text"', b"null"]), h)),
        "deep_nesting": with_valid(lambda v, h, r: (b"[" * 100_000 + b"]" * 100_000, h)),
        "huge": with_valid(lambda v, h, r: (json.dumps({"filler": "x" * (HUGE - 20)}).encode(), h)),
    }


def malformed_records(spec: TopicSpec, count: int, seed: int) -> list[Malformed]:
    """``count`` malformed records for ``spec``, every kind in turn (two huge ones at most). A null value
    always goes without a key where the topic allows it: neither key nor value (a producer's own
    ``send()`` refuses that; ``send_batch`` does not, nor do other clients)."""
    rng = random.Random(f"{seed}-{spec.name}")
    kinds = _kinds(spec)
    names = [name for name in kinds if name != "huge"]
    records = []
    for n in range(count):
        kind = "huge" if n in (7, count // 2) else names[n % len(names)]
        for _ in range(20):
            value, headers = kinds[kind](rng)
            reasons = _refusals(value, headers, spec)
            if reasons is not None:
                break
        else:
            raise AssertionError(f"{kind}: no undecodable record for {spec.name}")
        keyless = spec.cleanup is not Cleanup.COMPACT and (kind == "null_value" or rng.random() < 1 / 3)
        key = None if keyless else f"fuzz-{uuid.UUID(int=rng.getrandbits(128))}".encode()
        records.append(Malformed(kind, key, value, headers, reasons))
    return records


def _refusals(value: bytes | None, headers: Headers, spec: TopicSpec) -> tuple[str, str] | None:
    """The decoder's reasons for refusing the record, as a worker without data keys and one with them
    decode it (``services.protection.codec.decode_record``); None if either takes it as an event."""
    reasons = []
    for opener in (None, _open_as_a_sealer_would):
        try:
            decode(value, headers, events_of(spec), opener)
        except UndecodableRecord as refused:
            reasons.append(refused.reason)
        else:
            return None
    return reasons[0], reasons[1]


def _open_as_a_sealer_would(model: type[Event], data: Any) -> Any:
    """``Sealer.open_json`` for records that hold no sealed value (none of these do)."""
    return open_sealed(data, personal_paths(model), _no_key)


def _no_key(dek_id: str) -> DataKey:
    raise AssertionError(f"a malformed record with a sealed value (data key {dek_id})")
