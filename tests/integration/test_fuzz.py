"""Fuzz test: the running pipeline is sent thousands of malformed HTTP bodies (generated with hypothesis, to
every operation that takes a body in the OpenAPI documents the partner API and the matching API serve) and
thousands of malformed Kafka records (``tests.malformed``: every consumed topic, every way of breaking a
record), interleaved with good referrals.

* no process crashes: each is alive and ``/ready`` at the end;
* every HTTP request is answered with a 4xx ``application/problem+json`` (never a 5xx, never a stack
  trace) as the served OpenAPI document says: its status documented for the operation, its content type
  documented for that status, its body valid against the documented schema (jsonschema); and every 422 lists
  its field errors (for partner bodies broken in known places: those places);
* every malformed record is dead-lettered, once by each service that consumes its topic, as it was sent
  (key and value; agencies' inbound records are sealed whole, and opened here with the test's data keys;
  a near-1 MiB one, too large once sealed, goes without its value and says how large it was) with a
  ``dlq_error`` giving the reason the decoder gives for it: the dead-letter topics hold exactly that many
  records, and nothing else;
* the good referrals sent in between are processed exactly once (``tests.pipeline.Audit``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from schemas.coordinator_api import VolunteerRegistration
from schemas.partner_api import ReferralSubmission
from schemas.topics import REFERRALS_INBOUND, TopicSpec
from services.ops.topology import GROUP_TOPICS, SERVICES, consumed_topics
from services.runtime.codec import SEALED_HEADER
from services.runtime.deadletter import MAX_ERROR, VALUE_DROPPED
from services.runtime.http import PROBLEM
from services.runtime.kafka import send_record
from tests.conftest import leaks
from tests.kafka_helpers import consume_all
from tests.malformed import Malformed, malformed_records
from tests.pipeline import COORDINATOR_TOKEN, Pipeline, SteadyLoad, wait_for
from tests.processes import sealer_for
from tests.strategies import broken_bodies, submission_bodies

pytestmark = [pytest.mark.integration, pytest.mark.fault]
GOOD_REFERRALS = 40
RECORDS_PER_TOPIC = 200
CHUNKS = 8
PARTNER_EXAMPLES = 1200
MATCHING_EXAMPLES = 800
NO_CONCERN = str(uuid.UUID(int=0xC0C0))


def fuzz(examples: int) -> settings:
    """Deterministic (derandomized, no example database), as CI needs; each example is a real request."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=4),
    max_leaves=15,
)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]], model: type[BaseModel]) -> Any:
    """A valid body with a part removed, replaced by any JSON value, or an unknown field added; when the
    change left it valid (an optional part dropped, say), an unknown field too: never a valid body."""
    body = draw(valid)
    original = body
    target = body
    path = []
    while isinstance(target, dict) and target and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(target)))
        if not isinstance(target[name], dict) or not target[name]:
            break
        path.append(name)
        target = target[name]
    action = draw(st.sampled_from(["drop", "replace", "add"]))
    if action == "add" or not target:
        target[draw(st.text(min_size=1, max_size=10)).upper() + "_unknown"] = draw(json_values)
    else:
        name = draw(st.sampled_from(sorted(target)))
        if action == "drop":
            del target[name]
        else:
            old = target[name]
            target[name] = draw(json_values.filter(lambda value: value != old))
    try:
        model.model_validate(original)
    except ValidationError:
        return original
    original["still_valid_unknown"] = True
    return original


def as_bytes(content: Any) -> bytes:
    """A body as bytes: JSON-encoded unless it already is bytes."""
    return content if isinstance(content, bytes) else json.dumps(content).encode()


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode()),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"a":1,}', b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000]),
)


@dataclass(frozen=True)
class Operation:
    """One operation of an OpenAPI document that takes a body, and the answers it documents: for each
    status, each media type and a validator of its body's JSON Schema (with the document's components, so
    that references resolve)."""

    method: str
    template: str
    responses: dict[int, dict[str, Draft202012Validator]]

    def path(self, **values: str) -> str:
        return self.template.format(**values)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def operations_with_bodies(client: httpx.Client) -> list[Operation]:
    """From the document the API serves at /openapi.json: the operations a body can be sent to."""
    document = client.get("/openapi.json").raise_for_status().json()
    components = {"components": document.get("components", {})}
    found = [
        Operation(
            method.upper(),
            template,
            {
                int(code): {
                    media: Draft202012Validator(
                        {**components, **content.get("schema", {})},
                        format_checker=Draft202012Validator.FORMAT_CHECKER,
                    )
                    for media, content in response.get("content", {}).items()
                }
                for code, response in operation["responses"].items()
            },
        )
        for template, methods in document["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    ]
    assert found, "the document lists no operation that takes a body"
    return found


def media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def as_documented(operation: Operation, response: httpx.Response) -> list[str]:
    """What in the answer its document does not say: the status, the media type, the body's schema."""
    media = operation.responses.get(response.status_code)
    if media is None:
        return [f"status {response.status_code} not documented"]
    if media_type(response) not in media:
        return [f"{media_type(response)!r} not documented for {response.status_code} (only {sorted(media)})"]
    errors = media[media_type(response)].iter_errors(response.json())
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


class Answers:
    """Every HTTP answer of the fuzz, checked as it comes."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.operations: set[str] = set()

    def check(
        self, operation: Operation, response: httpx.Response, broken: Collection[tuple[str, ...]] = ()
    ) -> None:
        self.statuses[response.status_code] += 1
        self.operations.add(str(operation))
        where = f"{operation} → {response.status_code}: {response.text[:400]}"
        assert 400 <= response.status_code < 500, where
        assert as_documented(operation, response) == [], f"not as the document says: {where}"
        assert media_type(response) == PROBLEM, where
        assert "Traceback" not in response.text and 'File "' not in response.text, where
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"], where
        if response.status_code == 422:
            errors = problem["errors"]
            assert errors and all(isinstance(e["loc"], list) and e["msg"] and e["type"] for e in errors), (
                where
            )
            reported = {tuple(str(part) for part in e["loc"][1:]) for e in errors}
            for location in broken:
                assert any(found[: len(location)] == location for found in reported), (location, where)


def fuzz_partner_api(url: str, key: str, referral_id: str, answers: Answers) -> None:
    """Every body-taking operation of the partner API's document; the referral is a real one (PUT), the
    concern none (an acknowledgement whose body happened to be valid is a 404, nothing is written)."""
    headers = {"Authorization": f"Bearer {key}"}
    partner_mutations = mutated(submission_bodies(), ReferralSubmission)
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        operations = operations_with_bodies(client)
        (submit,) = (o for o in operations if str(o) == "POST /v1/referrals")

        @fuzz(PARTNER_EXAMPLES // 3)
        @given(case=broken_bodies())
        def broken(case: tuple[dict[str, Any], set[tuple[str, ...]]]) -> None:
            body, places = case
            answers.check(submit, client.post(submit.path(), json=body), places)

        @fuzz(PARTNER_EXAMPLES // 3)
        @given(
            body=st.one_of(partner_mutations, json_values, raw_bodies),
            operation=st.sampled_from(operations),
            content_type=st.sampled_from(["application/json"] * 3 + ["text/plain"]),
        )
        def anything(body: Any, operation: Operation, content_type: str) -> None:
            response = client.request(
                operation.method,
                operation.path(referral_id=referral_id, concern_id=NO_CONCERN),
                content=as_bytes(body),
                headers={"Content-Type": content_type},
            )
            answers.check(operation, response)

        @fuzz(PARTNER_EXAMPLES // 3)
        @given(
            body=partner_mutations,
            size=st.integers(256 * 1024 + 1, 600 * 1024),
        )
        def oversized_or_mutated(body: dict[str, Any], size: int) -> None:
            if size % 7 == 0:  # now and then: over the 256 KiB limit
                body["notes"] = "x" * size
            answers.check(submit, client.post(submit.path(), json=body))

        broken()
        anything()
        oversized_or_mutated()
    assert {str(o) for o in operations} <= answers.operations, "an operation was never sent a body"


def fuzz_matching_api(url: str, answers: Answers) -> None:
    """Every body-taking operation of the matching API's document, for a volunteer and a proposal that do
    not exist (a body that happened to be valid is a 404, nothing changes)."""
    headers = {"Authorization": f"Bearer {COORDINATOR_TOKEN}"}
    registration = st.fixed_dictionaries(
        {
            "volunteer_id": st.just("vol-fuzz-0001"),
            "name": st.just("Volunteer (synthetic)"),
            "gender": st.sampled_from(["female", "male", "other"]),
            "local_authority": st.just("hull"),
            "postcode_district": st.just("HU7"),
        }
    )
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        operations = operations_with_bodies(client)

        @fuzz(MATCHING_EXAMPLES)
        @given(
            body=st.one_of(mutated(registration, VolunteerRegistration), json_values, raw_bodies),
            operation=st.sampled_from(operations),
        )
        def anything(body: Any, operation: Operation) -> None:
            response = client.request(
                operation.method,
                operation.path(volunteer_id="vol-fuzz-none", proposal_id=str(uuid.uuid4())),
                content=as_bytes(body),
                headers={"Content-Type": "application/json"},
            )
            answers.check(operation, response)

        anything()
    assert {str(o) for o in operations} <= answers.operations, "an operation was never sent a body"


Sent = dict[tuple[str, int, int], Malformed]
"""Each malformed record by where it landed: (topic without prefix, partition, offset)."""


async def send_malformed(
    bootstrap: str, prefix: str, records: list[tuple[TopicSpec, Malformed]], sent: Sent
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await send_record(
                producer, prefix + spec.name, record.value, key=record.key, headers=record.headers
            )
            for spec, record in records
        ]
        for (spec, record), metadata in zip(records, await asyncio.gather(*futures), strict=True):
            sent[(spec.name, metadata.partition, metadata.offset)] = record
    finally:
        await producer.stop()


def dead_letters(pipeline: Pipeline, sent: Sent) -> tuple[Counter[tuple[str, str]], list[str]]:
    """(source topic, service) → dead letters; and what is wrong with any of them: not one of the malformed
    records sent (opened first where it is sealed whole), or not with a reason the decoder gives for it."""
    return asyncio.run(_dead_letters(pipeline, sent))


async def _dead_letters(pipeline: Pipeline, sent: Sent) -> tuple[Counter[tuple[str, str]], list[str]]:
    found: Counter[tuple[str, str]] = Counter()
    wrong = []
    sealer = sealer_for(pipeline.env, ["inbound"])
    await sealer.start()
    try:
        for spec in GROUP_TOPICS:
            for record in await consume_all(pipeline.bootstrap, pipeline.prefix + spec.dlq, seconds=60):
                headers = {name: value.decode(errors="replace") for name, value in record.headers}
                topic = headers["dlq_topic"].removeprefix(pipeline.prefix)
                found[(topic, headers["dlq_service"])] += 1
                original = sent.get((topic, int(headers["dlq_partition"]), int(headers["dlq_offset"])))
                where = f"{spec.dlq}@{record.partition}:{record.offset}"
                if original is None:
                    wrong.append(f"{where}: not a record the test sent")
                    continue
                value = record.value
                if VALUE_DROPPED in headers:  # sealed whole, a near-1 MiB value would not fit in a record
                    if (original.kind, topic, value) != ("huge", REFERRALS_INBOUND.name, None):
                        wrong.append(f"{where} ({original.kind}): its value dropped")
                    elif headers[VALUE_DROPPED] == str(len(original.value or b"")):
                        value = original.value
                elif SEALED_HEADER in headers:
                    if leaks(value.decode()):
                        wrong.append(f"{where} ({original.kind}): personal data in a sealed dead letter")
                    value = await sealer.open_bytes(value)
                if headers.get("dlq_error") not in {reason[:MAX_ERROR] for reason in original.reasons}:
                    wrong.append(
                        f"{where} ({original.kind}): {headers.get('dlq_error')!r}, not {original.reasons!r}"
                    )
                elif (record.key, value) != (original.key, original.value):
                    wrong.append(f"{where} ({original.kind}): not the original key and value")
    finally:
        await sealer.stop()
    return found, wrong


def test_malformed_http_bodies_and_kafka_records_are_refused_or_dead_lettered_and_nothing_crashes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, tmp_path)
    answers = Answers()
    sent: Sent = {}
    bad = [
        (spec, record) for spec in GROUP_TOPICS for record in malformed_records(spec, RECORDS_PER_TOPIC, 7)
    ]
    expected: Counter[tuple[str, str]] = Counter()
    for spec, _ in bad:
        for service in SERVICES:
            if spec in consumed_topics(service):
                expected[(spec.name, service.value)] += 1
    try:
        pipeline.start(volunteers=GOOD_REFERRALS * 4, web=False)
        load = SteadyLoad(pipeline.partner_urls(), pipeline.api_key, GOOD_REFERRALS, 4.0, "FUZZ").start()
        started = time.monotonic()
        for n in range(CHUNKS):  # the bad records in between the good ones
            load.wait_accepted(n * GOOD_REFERRALS // (2 * CHUNKS))
            asyncio.run(send_malformed(pipeline.bootstrap, pipeline.prefix, bad[n::CHUNKS], sent))
        kafka_seconds = time.monotonic() - started
        fuzz_partner_api(
            pipeline.partner_urls()[0], pipeline.api_key, next(iter(load.accepted.values())), answers
        )
        (matching_api,) = pipeline.of_kind("matching-api")
        fuzz_matching_api(matching_api.ready_url.removesuffix("/ready"), answers)
        http_seconds = time.monotonic() - started - kafka_seconds
        accepted = load.join()
        wait_for(
            lambda: dead_letters(pipeline, sent)[0] == expected,
            120,
            f"{sum(expected.values())} dead letters",
            every=1.0,
            tail=pipeline.tails(),
        )
        pipeline.wait_until_settled(GOOD_REFERRALS)
        found, wrong = dead_letters(pipeline, sent)
        assert found == expected
        assert wrong == [], f"{len(wrong)} dead letters not as sent or not for its reason: {wrong[:5]}"
        malformed = Counter(spec.name for spec, _ in bad)
        audit = pipeline.audit(accepted, malformed)
        for member in pipeline.members:
            assert member.process.alive() and member.process.starts == 1 and member.ready(), member.name
        assert leaks(pipeline.logs()) == []
    finally:
        pipeline.stop()
    print(
        f"\nfuzz: {sum(answers.statuses.values())} malformed HTTP bodies to {len(answers.operations)} "
        f"operations in {http_seconds:.1f}s, answered "
        f"{dict(sorted(answers.statuses.items()))}; {len(bad)} malformed records to "
        f"{len(GROUP_TOPICS)} topics "
        f"({dict(Counter(r.kind for _, r in bad))}, {sum(r.key is None for _, r in bad)} without a key) → "
        f"{sum(found.values())} dead letters, each the original with its reason; {audit.summary()}"
    )
