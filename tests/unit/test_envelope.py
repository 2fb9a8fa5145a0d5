from __future__ import annotations

import uuid

import pytest

from schemas.envelope import Envelope, UndecodableRecord, decode, encode
from schemas.events.referrals import InboundSubmission, ReferralSubmitted
from schemas.topics import EVENT_TYPES
from tests.samples import SAMPLES, submission_body


@pytest.mark.parametrize("event", list(SAMPLES.values()), ids=lambda e: e.event_type)
def test_every_event_round_trips_through_record_bytes_and_headers(event) -> None:
    envelope = Envelope.for_event(event, source="/tests", correlation_id="corr-1")
    key, value, headers = encode(event, envelope)
    assert key == event.partition_key().encode()
    names = {name for name, _ in headers}
    assert {
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "ce_correlationid",
        "content-type",
    } <= names
    decoded_envelope, decoded = decode(value, headers, EVENT_TYPES)
    assert decoded == event
    assert decoded_envelope == envelope


def test_decoding_a_bad_record_explains_without_quoting_the_input() -> None:
    body = submission_body(core_member__given_name="", core_member__date_of_birth="not-a-date")
    body["core_member"]["pnc_number"] = "SECRET-PNC-123"
    envelope = Envelope.for_event(
        InboundSubmission.model_validate(submission_body()), source="/agencies/x", correlation_id="c"
    )
    import json

    with pytest.raises(UndecodableRecord) as caught:
        decode(json.dumps(body).encode(), envelope.headers(), EVENT_TYPES)
    reason = caught.value.reason
    assert "core_member.date_of_birth" in reason and "core_member.pnc_number" in reason
    assert "SECRET-PNC-123" not in reason and "not-a-date" not in reason


@pytest.mark.parametrize(
    ("value", "headers", "expected"),
    [
        (b"{}", [], "CloudEvents headers invalid"),
        (b"\xff\xfe", None, "Invalid JSON"),
        (None, None, "no value"),
        (b"{}", [("ce_type", b"circles.unknown.v1")], "unknown event type"),
    ],
)
def test_undecodable_records_get_a_reason(value, headers, expected) -> None:
    good = Envelope(
        id=uuid.uuid4(),
        type=ReferralSubmitted.event_type,
        source="/t",
        time="2026-11-24T10:00:00Z",
        correlationid="c",
    ).headers()
    if headers is None:
        headers = good
    elif headers:
        headers = [h for h in good if h[0] != "ce_type"] + headers
    with pytest.raises(UndecodableRecord, match=expected):
        decode(value, headers, EVENT_TYPES)


@pytest.mark.parametrize("value", [b"\xff\xfe", b"{", b"[" * 100_000 + b"]" * 100_000])
def test_a_worker_with_data_keys_refuses_unreadable_json_with_a_reason(value: bytes) -> None:
    """With an opener (a worker holding data keys), the value is parsed before it is validated: JSON nested
    deeper than the parser recurses raised RecursionError, which stopped the worker at every restart."""
    headers = Envelope.for_event(SAMPLES[ReferralSubmitted], source="/t", correlation_id="c").headers()
    with pytest.raises(UndecodableRecord, match="not JSON"):
        decode(value, headers, EVENT_TYPES, opener=lambda model, data: data)
