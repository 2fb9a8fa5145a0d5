"""Where a contract holds personal data: the paths of the fields marked ``x-personal-data`` (``PERSONAL``).

Derived from the JSON Schema, so a field is known to be personal the day it is marked. The runtime uses it
to refuse writing personal data in the clear; ``services.protection`` to seal exactly those fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel

EACH = "[]"
"""A path step meaning every item of a list (or every value of a mapping)."""

Path = tuple[str, ...]


@cache
def personal_paths(model: type[BaseModel]) -> tuple[Path, ...]:
    """Paths (field names, ``[]`` for each item) of every field marked ``x-personal-data`` in ``model``."""
    schema = model.model_json_schema()
    return tuple(sorted(set(_walk(schema, schema.get("$defs", {}), (), frozenset()))))


def _walk(node: dict[str, Any], defs: dict[str, Any], path: Path, seen: frozenset[str]) -> Iterable[Path]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _walk(defs[name], defs, path, seen | {name})
        return
    if node.get("x-personal-data"):
        yield path
        return
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in node.get(keyword, []):
            yield from _walk(option, defs, path, seen)
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, defs, (*path, name), seen)
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], defs, (*path, EACH), seen)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], defs, (*path, EACH), seen)
