"""Generate the contract files beside this module from the pydantic models.

    python -m schemas.generate            # write json/, topics.yaml, asyncapi.yaml, openapi.json
    python -m schemas.generate --check    # exit 1 and name the stale files

The files are committed so that partners can read them without running anything; a test runs --check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from schemas.envelope import Envelope, Event
from schemas.topics import BY_NAME, TOPICS, Service, TopicSpec

HERE = Path(__file__).resolve().parent
KAFKA_BINDING_VERSION = "0.5.0"
OPENAPI_SOURCES: dict[str, str] = {
    "openapi.json": "services.referrals.api:openapi_document",
    "openapi-matching.json": "services.matching.api:openapi_document",
}
"""Each HTTP API's OpenAPI document (file name in schemas/) and where it comes from, as module:function."""


def _dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _dump_yaml(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=110, allow_unicode=True)


def _all_events() -> list[type[Event]]:
    seen: dict[str, type[Event]] = {}
    for spec in TOPICS:
        for event in spec.events:
            seen.setdefault(event.event_type, event)
    return list(seen.values())


def event_json_schema(event: type[Event]) -> dict[str, Any]:
    schema = event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://circles.example.org/schemas/{event.event_type}.json"
    schema["x-cloudevents-type"] = event.event_type
    return schema


def cloudevent_headers_schema() -> dict[str, Any]:
    """The Kafka headers of every record (CloudEvents binary mode), derived from the Envelope model."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in Envelope.model_fields.items():
        header = "content-type" if name == "datacontenttype" else f"ce_{name}"
        properties[header] = {"type": "string", "description": field.description or f"CloudEvents `{name}`"}
        if field.is_required():
            required.append(header)
    properties["ce_specversion"]["const"] = "1.0"
    properties["ce_correlationid"]["description"] = "Follows a referral from its HTTP request onwards"
    properties["ce_causationid"]["description"] = "Id of the event that caused this one"
    return {"type": "object", "properties": properties, "required": [*required, "ce_specversion"]}


def topics_document() -> dict[str, Any]:
    return {
        "topics": [
            {
                "name": spec.name,
                "owner": spec.owner.value,
                "key": spec.key,
                "partitions": spec.partitions,
                "cleanup_policy": spec.cleanup.value,
                "config": spec.config,
                "consumers": [consumer.value for consumer in spec.consumers],
                "personal_data": spec.personal_data,
                "events": [event.event_type for event in spec.events],
                "description": spec.description,
            }
            for spec in TOPICS
        ]
    }


def _channel_id(spec: TopicSpec) -> str:
    return spec.name.removeprefix("circles.").replace(".", "-")


def asyncapi_document() -> dict[str, Any]:
    events = _all_events()
    _, definitions = models_json_schema(
        [(event, "validation") for event in events], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = {"CloudEventHeaders": cloudevent_headers_schema(), **definitions["$defs"]}
    messages = {
        event.__name__: {
            "name": event.event_type,
            "title": event.__name__,
            "summary": (event.__doc__ or event.__name__).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{event.__name__}"},
        }
        for event in events
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        if spec.dead_letter:
            continue
        channel = _channel_id(spec)
        channels[channel] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {e.__name__: {"$ref": f"#/components/messages/{e.__name__}"} for e in spec.events},
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [spec.cleanup.value],
                        "retention.ms": spec.retention_ms,
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
            "x-key": spec.key,
            "x-owner": spec.owner.value,
            "x-personal-data": spec.personal_data,
            "x-dead-letter-topic": BY_NAME[spec.dlq].name if spec.dlq in BY_NAME else None,
        }
        refs = [{"$ref": f"#/channels/{channel}/messages/{e.__name__}"} for e in spec.events]
        operations[f"{spec.owner.value}-sends-{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            **({"messages": refs} if refs else {}),
        }
        for consumer in spec.consumers:
            operations[f"{consumer.value}-receives-{channel}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                **({"messages": refs} if refs else {}),
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [_group_id(consumer)]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Circles referral platform: events",
            "version": "1.0.0",
            "description": (
                "Events between the Circles services over Apache Kafka. Record values are the JSON payloads "
                "below; CloudEvents attributes travel as ce_-prefixed headers (binary content mode). Every "
                "event of one referral (or volunteer) is keyed to one partition. Generated from the pydantic "
                "models in schemas/ by `python -m schemas.generate`; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `make run` starts (its real port is printed at start-up)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _group_id(service: Service) -> str:
    return f"circles-{service.value}"


def openapi_documents() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for file_name, source in OPENAPI_SOURCES.items():
        module_name, function = source.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # that service has no HTTP API yet
            raise
        documents[file_name] = getattr(module, function)()
    return documents


def render() -> dict[Path, str]:
    """Every generated file and its content, keyed by path relative to schemas/."""
    files: dict[Path, str] = {}
    for event in _all_events():
        files[Path("json") / f"{event.event_type}.json"] = _dump_json(event_json_schema(event))
    files[Path("json") / "cloudevent-headers.json"] = _dump_json(cloudevent_headers_schema())
    files[Path("topics.yaml")] = _dump_yaml(topics_document())
    files[Path("asyncapi.yaml")] = _dump_yaml(asyncapi_document())
    for name, document in openapi_documents().items():
        files[Path(name)] = _dump_json(document)
    return files


def stale_files(root: Path = HERE, render_files: Callable[[], dict[Path, str]] = render) -> list[str]:
    expected = render_files()
    stale = [str(path) for path, content in expected.items() if _read(root / path) != content]
    generated_dir = root / "json"
    if generated_dir.exists():
        stale += [
            str(path.relative_to(root))
            for path in sorted(generated_dir.glob("*.json"))
            if path.relative_to(root) not in expected
        ]
    return stale


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def write(root: Path = HERE) -> list[str]:
    expected = render()
    generated_dir = root / "json"
    generated_dir.mkdir(exist_ok=True)
    for path in generated_dir.glob("*.json"):
        if path.relative_to(root) not in expected:
            path.unlink()
    changed = []
    for path, content in expected.items():
        if _read(root / path) != content:
            (root / path).write_text(content)
            changed.append(str(path))
    return changed


def generator_main(
    argv: list[str] | None,
    *,
    description: str,
    folder: str,
    stale: Callable[[], list[str]],
    write: Callable[[], list[str]],
) -> int:
    """The command line of a generator of committed files: write them, or ``--check`` that none is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if any generated file is stale")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for path in found:
            print(f"stale: {folder}/{path} (run `make schemas`)", file=sys.stderr)
        return 1 if found else 0
    for path in write():
        print(f"wrote {folder}/{path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return generator_main(
        argv,
        description="Generate JSON Schema, AsyncAPI and OpenAPI files",
        folder="schemas",
        stale=stale_files,
        write=write,
    )


if __name__ == "__main__":
    sys.exit(main())
