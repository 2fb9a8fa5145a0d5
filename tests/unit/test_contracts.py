"""The contract files are generated from the models, and the models keep personal data in its place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas import generate
from schemas.envelope import Event
from schemas.topics import BY_NAME, CIRCLES_COMMANDS, EVENT_TYPES, TOPICS, Cleanup, Service, events_of
from tests.samples import SAMPLES, sample_event

SCHEMAS = Path(generate.__file__).parent
PERSONAL_FIELD_NAMES = {
    "name",
    "given_name",
    "family_name",
    "date_of_birth",
    "pnc_number",
    "email",
    "phone",
    "address",
    "notes",
    "referrer",
    "core_member",
}


def test_generated_files_are_current() -> None:
    assert generate.stale_files() == [], "run `make schemas` and commit the result"


def test_stale_check_notices_an_edited_file(tmp_path: Path) -> None:
    files = generate.render()
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    assert generate.stale_files(tmp_path) == []
    (tmp_path / "asyncapi.yaml").write_text("edited by hand\n")
    (tmp_path / "json" / "circles.old-event.v1.json").write_text("{}")
    assert generate.stale_files(tmp_path) == ["asyncapi.yaml", "json/circles.old-event.v1.json"]


def test_every_event_type_has_a_sample_and_is_versioned() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES.values())
    for event_type in EVENT_TYPES:
        assert event_type.startswith("circles.") and event_type.rsplit(".", 1)[1].startswith("v")


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_sample_validates_against_its_generated_json_schema(event_type: str) -> None:
    schema = json.loads((SCHEMAS / "json" / f"{event_type}.json").read_text())
    jsonschema.validate(json.loads(sample_event(event_type).model_dump_json()), schema)


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


def test_topics_open_to_other_services_carry_no_personal_fields() -> None:
    open_topics = [spec for spec in TOPICS if not spec.personal_data and spec.events]
    assert any(consumer != spec.owner for spec in open_topics for consumer in spec.consumers)
    for spec in open_topics:
        for event in spec.events:
            fields = _property_names(event.model_json_schema())
            if spec.name == "circles.agencies.v1":
                fields -= {"name"}  # an agency's own name, not a person's
            assert not fields & PERSONAL_FIELD_NAMES, f"{event.event_type} on {spec.name}"


ALSO_READ_BY = {CIRCLES_COMMANDS.name: {Service.REFERRALS}}
"""A circle's concern summaries are the referral's personal data, sealed under the referral's own key (which
the referrals service owns): the referrals service reads a raised concern's summary from the circles commands,
for the agency that made the referral (``GET /v1/concerns/{id}``), and keeps it sealed in its own table."""


def test_private_topics_are_read_only_by_the_service_owning_the_data() -> None:
    for spec in TOPICS:
        if spec.personal_data and not spec.dead_letter:
            data_owner = Service.REFERRALS if spec.owner is Service.PARTNER_AGENCIES else spec.owner
            assert set(spec.consumers) <= {data_owner, *ALSO_READ_BY.get(spec.name, ())}, spec.name


def test_personal_fields_are_marked_and_stay_on_private_topics() -> None:
    for spec in TOPICS:
        for event in spec.events:
            marked = "x-personal-data" in json.dumps(event.model_json_schema())
            if marked:
                assert spec.personal_data, (
                    f"{event.event_type} holds personal data but {spec.name} is not private"
                )


def test_each_topic_has_one_owner_and_keyed_topics_are_copartitioned() -> None:
    referral_keyed = [spec for spec in TOPICS if spec.key == "referral_id" and spec.partitions > 1]
    assert len({spec.partitions for spec in referral_keyed}) == 1
    for spec in TOPICS:
        if spec.dead_letter:
            assert spec.name.removesuffix(".dlq") in BY_NAME
        if spec.cleanup is Cleanup.COMPACT:
            assert spec.config["cleanup.policy"] == "compact"
        assert set(events_of(spec).values()) == set(spec.events)


def test_every_event_names_its_partition_key() -> None:
    for event_type, model in EVENT_TYPES.items():
        key = sample_event(event_type).partition_key()
        assert isinstance(key, str) and key, event_type
        assert issubclass(model, Event)


def test_asyncapi_document_is_self_consistent() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.0")

    def resolve(ref: str) -> Any:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert refs
    for ref in refs:
        assert resolve(ref) is not None, ref
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in TOPICS if not spec.dead_letter}
    for operation in document["operations"].values():
        assert operation["action"] in {"send", "receive"}
