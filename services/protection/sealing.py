"""Which fields of a model are personal, and sealing them one by one with a subject's data key.

The contracts mark personal fields with ``x-personal-data`` in their JSON Schema; the paths to them are
derived from that schema, so a new personal field is sealed the day it is marked. A sealed field is the
string ``sealed:v1:<data key id>:<base64url(nonce | AES-256-GCM ciphertext and tag)>`` of the field's JSON
value, with the field's path as associated data (a sealed value cannot be moved to another field). Every
other field stays readable: ids, dates, statuses and outcomes are what the report and the pipeline need.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.personal import EACH, Path

PREFIX = "sealed:v1:"
NONCE_BYTES = 12
SEALED = re.compile(rb"sealed:v1:([0-9a-f]{32}):")


class DataKey:
    """One subject's data key, unwrapped: seals and opens that subject's personal fields."""

    def __init__(self, dek_id: str, subject: str, key: bytes) -> None:
        self.dek_id = dek_id
        self.subject = subject
        self._aead = AESGCM(key)

    def seal(self, value: Any, path: Path) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(value, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, _aad(path))
        return f"{PREFIX}{self.dek_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, path: Path) -> Any:
        blob = base64.urlsafe_b64decode(sealed.rsplit(":", 1)[1])
        try:
            return json.loads(self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(path)))
        except InvalidTag:
            raise ValueError(f"sealed value at {'.'.join(path)} fails authentication") from None


def _aad(path: Path) -> bytes:
    return ".".join(path).encode()


def seal(data: Any, paths: Iterable[Path], key: DataKey) -> Any:
    """``data`` (a model's JSON form) with the values at ``paths`` sealed; ``None`` stays ``None``."""
    return _apply_all(data, paths, lambda value, where: key.seal(value, where))


def holds_personal(data: Any, paths: Iterable[Path]) -> bool:
    """Whether any value at ``paths`` is present (not ``None``): an erased record holds none."""
    paths = tuple(paths)
    tree = _tree(paths)
    if tree is not None:
        return _holds(data, tree)
    found = False

    def note(value: Any, _: Path) -> Any:
        nonlocal found
        found = True
        return value

    for path in paths:
        _map(data, path, (), note)
    return found


def open_sealed(data: Any, paths: Iterable[Path], key_for: Callable[[str], DataKey]) -> Any:
    """The reverse of ``seal``; ``key_for(dek_id)`` raises ``KeyDestroyed`` for an erased subject."""

    def unseal(value: Any, where: Path) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            return key_for(value[len(PREFIX) : len(PREFIX) + 32]).open(value, where)
        return value  # written before sealing existed, or by an agency (inbound): taken as it is

    return _apply_all(data, paths, unseal)


# A model's personal paths as one tree, walked once per record (issue 13: the partner API sealed and opened
# each path in turn, copying the record's outer dicts once per path). A node maps a step to the node below
# it, or to the whole path where a path ends.
Tree = dict[str, Any]
"""step -> the node below (a ``Tree``), or the whole path (a ``Path``) where it ends"""


@cache
def _tree(paths: tuple[Path, ...]) -> Tree | None:
    """The paths as a tree; ``None`` where a walk of the tree could differ from applying the paths one after
    another (an empty or repeated path, a path inside another, a list step beside a field step): those are
    applied in turn (``_map``), as before."""
    root: Tree = {}
    for path in paths:
        if not path:
            return None
        node = root
        for n, step in enumerate(path):
            last = n == len(path) - 1
            below = node.get(step)
            if below is None:
                if (step == EACH and node) or (EACH in node):
                    return None
                if last:
                    node[step] = path
                    break
                node[step] = below = {}
            elif last or isinstance(below, tuple):
                return None  # repeated, or one path inside another
            node = below
    return root


def _apply_all(data: Any, paths: Iterable[Path], change: Callable[[Any, Path], Any]) -> Any:
    paths = tuple(paths)
    tree = _tree(paths)
    if tree is None:
        for path in paths:
            data = _map(data, path, (), change)
        return data
    return _walk(data, tree, change)


def _walk(data: Any, node: Tree, change: Callable[[Any, Path], Any]) -> Any:
    """What applying each path of ``node`` in turn with ``_map`` gives, in one walk."""
    if data is None:
        return None
    if EACH in node:
        below = node[EACH]
        if isinstance(data, list):
            return [_step(item, below, change) for item in data]
        if isinstance(data, dict):
            return {k: _step(v, below, change) for k, v in data.items()}
        return data
    if not isinstance(data, dict):
        return data
    changed: dict[str, Any] | None = None
    for step, below in node.items():
        if step in data:
            if changed is None:
                changed = dict(data)
            changed[step] = _step(data[step], below, change)
    return data if changed is None else changed


def _step(data: Any, below: Tree | Path, change: Callable[[Any, Path], Any]) -> Any:
    if data is None:
        return None
    if isinstance(below, tuple):
        return change(data, below)
    return _walk(data, below, change)


def _holds(data: Any, node: Tree | Path) -> bool:
    if data is None:
        return False
    if isinstance(node, tuple):
        return True
    if EACH in node:
        below = node[EACH]
        if isinstance(data, list):
            return any(_holds(item, below) for item in data)
        if isinstance(data, dict):
            return any(_holds(v, below) for v in data.values())
        return False
    if not isinstance(data, dict):
        return False
    return any(step in data and _holds(data[step], below) for step, below in node.items())


def _map(data: Any, path: Path, done: Path, change: Callable[[Any, Path], Any]) -> Any:
    if data is None:
        return None
    if not path:
        return change(data, done)
    step, rest = path[0], path[1:]
    if step == EACH:
        if isinstance(data, list):
            return [_map(item, rest, (*done, EACH), change) for item in data]
        if isinstance(data, dict):
            return {k: _map(v, rest, (*done, EACH), change) for k, v in data.items()}
        return data
    if not isinstance(data, dict) or step not in data:
        return data
    return {**data, step: _map(data[step], rest, (*done, step), change)}


def sealed_key_ids(raw: bytes) -> set[str]:
    """The data keys a raw record refers to (to fetch any this process has not seen yet)."""
    return {match.decode() for match in SEALED.findall(raw)}
