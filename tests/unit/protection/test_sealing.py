"""Sealing personal fields: which fields, the round trip, and what a wrong or destroyed key does."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events.referrals import SubmitReferral
from schemas.events.volunteers import VolunteerRegistered
from schemas.partner_api import ReferralSubmission
from schemas.personal import EACH, personal_paths
from services.protection import sealing
from services.protection.errors import KeyDestroyed
from services.protection.sealing import (
    PREFIX,
    DataKey,
    holds_personal,
    open_sealed,
    seal,
    sealed_key_ids,
)
from tests.samples import PERSONAL_SENTINELS, sample


def key(subject: str = "referral:1") -> DataKey:
    return DataKey(os.urandom(16).hex(), subject, os.urandom(32))


def test_personal_paths_come_from_the_contract_markers() -> None:
    assert set(personal_paths(ReferralSubmission)) == {
        ("referrer", "name"),
        ("referrer", "email"),
        ("referrer", "phone"),
        ("core_member", "given_name"),
        ("core_member", "family_name"),
        ("core_member", "date_of_birth"),
        ("core_member", "pnc_number"),
        ("notes",),
    }
    assert ("fingerprint",) in personal_paths(SubmitReferral)
    assert set(personal_paths(VolunteerRegistered)) == {
        ("volunteer", "name"),
        ("volunteer", "conflicts", EACH, "reason"),
    }


def test_a_sealed_command_shows_no_personal_value_and_opens_to_the_same_command() -> None:
    command = sample(SubmitReferral)
    data_key = key()
    sealed = seal(command.model_dump(mode="json"), personal_paths(SubmitReferral), data_key)
    raw = json.dumps(sealed).encode()
    assert not [value for value in PERSONAL_SENTINELS if value.encode() in raw]
    assert sealed_key_ids(raw) == {data_key.dek_id}
    assert sealed["agency_id"] == command.agency_id  # what is not personal stays readable
    opened = open_sealed(sealed, personal_paths(SubmitReferral), {data_key.dek_id: data_key}.__getitem__)
    assert SubmitReferral.model_validate(opened) == command


def test_each_item_of_a_list_is_sealed_and_none_stays_none() -> None:
    data: dict[str, Any] = {"conflicts": [{"reason": "a"}, {"reason": "b"}], "notes": None}
    sealed = seal(data, [("conflicts", EACH, "reason"), ("notes",)], key())
    assert all(item["reason"].startswith(PREFIX) for item in sealed["conflicts"])
    assert sealed["notes"] is None


def test_a_value_moved_to_another_field_does_not_open() -> None:
    data_key = key()
    sealed = seal({"a": "x", "b": "y"}, [("a",), ("b",)], data_key)
    swapped = {"a": sealed["b"], "b": sealed["a"]}
    with pytest.raises(ValueError, match="fails authentication"):
        open_sealed(swapped, [("a",), ("b",)], lambda _: data_key)


def test_without_the_key_nothing_opens() -> None:
    sealed = seal({"a": "x"}, [("a",)], key())

    def destroyed(dek_id: str) -> DataKey:
        raise KeyDestroyed(dek_id)

    with pytest.raises(KeyDestroyed):
        open_sealed(sealed, [("a",)], destroyed)


def test_another_subjects_key_does_not_open_it() -> None:
    sealed = seal({"a": "x"}, [("a",)], key())
    with pytest.raises(ValueError):
        open_sealed(sealed, [("a",)], lambda _: key())


def test_a_record_with_no_personal_value_is_left_as_it_is_and_needs_no_key() -> None:
    paths = [("conflicts", EACH, "reason"), ("notes",)]
    assert not holds_personal({"conflicts": [], "notes": None, "id": "x"}, paths)
    assert holds_personal({"conflicts": [{"reason": "a"}], "notes": None}, paths)
    assert holds_personal({"conflicts": [], "notes": ""}, paths)


async def test_the_sealer_creates_no_key_for_an_erased_record() -> None:
    import uuid

    from services.protection.sealer import Sealer
    from services.referrals.domain.referral import ReferralEntry, erase
    from tests.unit.referrals.test_erasure import erase_command
    from tests.unit.referrals.test_referral import NOW, submitted

    class NoKeys:
        async def ensure(self, subject: str) -> DataKey:
            raise AssertionError(f"a key was created for {subject}")

    sealer = Sealer({"referral": NoKeys()})  # type: ignore[dict-item]
    entry, _ = submitted()
    erased = erase(entry, erase_command(), uuid.uuid4(), NOW).entry
    assert erased is not None
    data = erased.model_dump(mode="json")
    assert await sealer.seal_json(ReferralEntry, data, "referral:1") == data
    with pytest.raises(AssertionError, match="a key was created"):
        await sealer.seal_json(ReferralEntry, entry.model_dump(mode="json"), "referral:1")


# -- the walk of a model's personal paths as one tree (issue 13) ---------------------------------------

STEPS = st.sampled_from(["a", "b", "c", EACH])
JSON = st.recursive(
    st.none() | st.integers(-3, 3) | st.sampled_from(["x", "y"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner),
    max_leaves=12,
)


def _one_at_a_time(data: Any, paths: tuple[tuple[str, ...], ...], change: Any) -> Any:
    for path in paths:
        data = sealing._map(data, path, (), change)
    return data


@settings(max_examples=400, deadline=None)
@given(data=JSON, paths=st.lists(st.lists(STEPS, max_size=4).map(tuple), max_size=5).map(tuple))
def test_one_walk_of_the_paths_gives_what_applying_them_in_turn_gives(
    data: Any, paths: tuple[tuple[str, ...], ...]
) -> None:
    """Sealing, opening and the "holds personal data" check walk a model's paths as one tree; for any record
    and any set of paths (nested, in lists, prefixes of each other: those fall back) the result is the
    one-path-at-a-time result, never the input changed in place."""

    def change(value: Any, where: tuple[str, ...]) -> Any:
        return ["changed", list(where), value]

    before = json.dumps(data)
    assert sealing._apply_all(data, paths, change) == _one_at_a_time(data, paths, change)
    found: list[Any] = []

    def note(value: Any, _: tuple[str, ...]) -> Any:
        found.append(value)
        return value

    _one_at_a_time(data, paths, note)
    assert holds_personal(data, paths) is bool(found)
    assert json.dumps(data) == before


def test_the_referral_paths_are_walked_as_a_tree() -> None:
    """The contracts' paths need no fallback (the tree is what the record path uses)."""
    assert sealing._tree(personal_paths(SubmitReferral)) is not None
    assert sealing._tree((("a",), ("a", "b"))) is None  # one path inside another: applied in turn
