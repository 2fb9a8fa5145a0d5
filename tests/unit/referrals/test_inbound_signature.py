"""The signature that ties an inbound Kafka submission to the agency that sent it (issue 14, finding 1)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from schemas.envelope import Envelope, encode
from schemas.events.referrals import InboundSubmission
from services.referrals.domain.inbound_signature import (
    SIGNATURE_HEADER,
    SignatureRefused,
    signed_headers,
    verify,
)
from services.referrals.domain.keys import new_kafka_signing_key
from tests.samples import submission_body

KEY_A, KEY_B = new_kafka_signing_key(), new_kafka_signing_key()


def record(agency: str, key: str | None, **body: object) -> tuple[list[tuple[str, bytes]], bytes]:
    """Headers and value as an agency system writes them, signed with ``key`` (None: unsigned)."""
    event = InboundSubmission.model_validate(submission_body(**body))
    envelope = Envelope.for_event(event, source=f"/agencies/{agency}", correlation_id="c")
    _, value, headers = encode(event, envelope)
    return (signed_headers(key, headers, value) if key is not None else headers), value


def replaced(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(n, value if n == name else v) for n, v in headers]


def test_a_record_signed_with_its_agencys_key_verifies() -> None:
    headers, value = record("agency-a", KEY_A)
    verify("agency-a", KEY_A, headers, value)


def test_the_signature_is_the_documented_hmac_an_agency_can_compute_without_our_code() -> None:
    headers, value = record("agency-a", KEY_A)
    found = dict(headers)
    lines = [b"circles-inbound-v1", found["ce_id"], found["ce_source"], found["ce_type"], found["ce_time"]]
    message = b"\n".join([*lines, hashlib.sha256(value).hexdigest().encode()])
    expected = "v1=" + hmac.new(KEY_A.encode(), message, hashlib.sha256).hexdigest()
    assert found[SIGNATURE_HEADER].decode() == expected


def test_agency_a_claiming_to_be_agency_b_is_refused() -> None:
    headers, value = record("agency-b", KEY_A)  # ce_source B, signed with A's own key
    with pytest.raises(SignatureRefused, match="does not verify with the key of agency 'agency-b'"):
        verify("agency-b", KEY_B, headers, value)


def test_rewriting_the_source_of_a_signed_record_breaks_the_signature() -> None:
    headers, value = record("agency-a", KEY_A)
    forged = replaced(headers, "ce_source", b"/agencies/agency-b")
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify("agency-b", KEY_B, forged, value)
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify("agency-a", KEY_A, forged, value)


@pytest.mark.parametrize("header", ["ce_id", "ce_type", "ce_time"])
def test_any_altered_signed_header_breaks_the_signature(header: str) -> None:
    headers, value = record("agency-a", KEY_A)
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify("agency-a", KEY_A, replaced(headers, header, b"x" + dict(headers)[header]), value)


def test_an_altered_value_breaks_the_signature() -> None:
    headers, _ = record("agency-a", KEY_A)
    _, other = record("agency-a", KEY_A, agency_reference="SOMETHING-ELSE")
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify("agency-a", KEY_A, headers, other)


def test_an_unsigned_record_is_refused_with_a_reason() -> None:
    headers, value = record("agency-a", None)
    with pytest.raises(SignatureRefused, match="unsigned"):
        verify("agency-a", KEY_A, headers, value)


def test_an_agency_without_a_signing_key_cannot_submit_over_kafka() -> None:
    headers, value = record("agency-a", KEY_A)
    with pytest.raises(SignatureRefused, match="rotate-key"):
        verify("agency-a", None, headers, value)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(b"v2=00", "is not v1=<hex>"), (b"v1=", "is not v1=<hex>"), (b"v1=zz", "does not verify")],
)
def test_a_malformed_signature_is_refused(signature: bytes, reason: str) -> None:
    headers, value = record("agency-a", KEY_A)
    with pytest.raises(SignatureRefused, match=reason.replace("<", ".").replace(">", ".")):
        verify("agency-a", KEY_A, replaced(headers, SIGNATURE_HEADER, signature), value)


def test_a_second_signature_or_a_repeated_or_multiline_signed_header_is_refused() -> None:
    headers, value = record("agency-a", KEY_A)
    with pytest.raises(SignatureRefused, match="more than one"):
        verify("agency-a", KEY_A, [*headers, (SIGNATURE_HEADER, dict(headers)[SIGNATURE_HEADER])], value)
    with pytest.raises(SignatureRefused, match="ce_source repeated"):
        verify("agency-a", KEY_A, [*headers, ("ce_source", b"/agencies/agency-a")], value)
    with pytest.raises(SignatureRefused, match="line break"):
        verify("agency-a", KEY_A, replaced(headers, "ce_type", b"a\nb"), value)


def test_the_reason_never_quotes_the_key_or_the_content() -> None:
    headers, value = record("agency-b", KEY_A)
    with pytest.raises(SignatureRefused) as refused:
        verify("agency-b", KEY_B, headers, value)
    assert KEY_A not in str(refused.value) and KEY_B not in str(refused.value)
    assert "Ada Placeholder" not in str(refused.value)
