"""Key-encryption keys: wrap and unwrap, rotation to a new primary, and clear configuration errors."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from services.protection.errors import KekError
from services.protection.keks import LocalKeks, add_kek


def test_wrap_round_trip_bound_to_its_context() -> None:
    keks = LocalKeks({"k1": os.urandom(32)}, "k1")
    data_key = os.urandom(32)
    wrapped = keks.wrap(data_key, b"referral:1")
    assert wrapped.kek_id == "k1" and data_key not in wrapped.blob
    assert keks.unwrap(wrapped, b"referral:1") == data_key
    with pytest.raises(InvalidTag):
        keks.unwrap(wrapped, b"referral:2")


def test_rotation_wraps_with_the_new_primary_and_still_unwraps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    first = add_kek(path, "2026-01")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = LocalKeks.from_file(path).wrap(b"k" * 32, b"s")
    second = add_kek(path, "2026-11")
    keks = LocalKeks.from_file(path)
    assert keks.primary_id == second != first
    assert keks.unwrap(old, b"s") == b"k" * 32
    assert keks.wrap(b"k" * 32, b"s").kek_id == second


def test_bad_configurations_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(KekError, match="does not exist"):
        LocalKeks.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"keys": {}}))
    with pytest.raises(KekError, match="not valid"):
        LocalKeks.from_file(tmp_path / "bad.json")
    with pytest.raises(KekError, match="32 bytes"):
        LocalKeks.from_base64(base64.b64encode(b"short").decode())
    with pytest.raises(KekError, match="not configured"):
        LocalKeks({"a": os.urandom(32)}, "a").unwrap(
            LocalKeks({"b": os.urandom(32)}, "b").wrap(b"x" * 32, b"s"), b"s"
        )
