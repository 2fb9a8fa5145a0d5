"""Erasure and retention in the referral aggregate: what goes, what stays, and when it is due."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from schemas.common import ReferralStatus
from schemas.events.matching import CircleFormed
from schemas.events.referrals import EraseReferral, ReferralErased, ReferralWithdrawn, WithdrawReferral
from services.referrals.domain.referral import (
    ReferralEntry,
    ReferralErasedError,
    UnknownReferral,
    erase,
    on_matching_event,
    submit,
    withdraw,
)
from services.referrals.domain.retention import RetentionPolicy, closed_on, due, due_for_erasure
from services.runtime.ids import derive_id
from tests.samples import PERSONAL_SENTINELS, sample, submission
from tests.unit.referrals.test_referral import NOW, POLICY, RID, command, submitted


def erase_command(reason: str = "request") -> EraseReferral:
    return EraseReferral(referral_id=RID, reason=reason, requested_by="coordinator", requested_at=NOW)


def test_erasing_an_open_referral_withdraws_it_and_keeps_only_non_personal_facts() -> None:
    entry, _ = submitted()
    assert entry.record and entry.record.status is ReferralStatus.ELIGIBLE
    command_id = uuid.uuid4()
    change = erase(entry, erase_command(), command_id, NOW)
    assert change.entry and change.entry.record
    record = change.entry.record
    assert record.erased and record.submission is None and record.fingerprint is None
    assert record.status is ReferralStatus.WITHDRAWN
    assert record.decision == entry.record.decision  # the outcome survives for the report
    assert [type(e) for _, e in change.events] == [ReferralWithdrawn, ReferralErased]
    assert [i for i, _ in change.events] == [
        derive_id(command_id, "withdrawn"),
        derive_id(command_id, "erased"),
    ]
    assert [h.type for h in record.history][-2:] == [
        "circles.referral.withdrawn.v1",
        "circles.referral.erased.v1",
    ]
    text = change.entry.model_dump_json()
    assert [value for value in PERSONAL_SENTINELS if value in text] == []


def test_erasing_a_closed_referral_adds_only_the_erasure() -> None:
    entry, _ = submitted(submission(risk__level="low"))
    assert entry.record and entry.record.status is ReferralStatus.INELIGIBLE
    change = erase(entry, erase_command("retention"), uuid.uuid4(), NOW)
    assert change.entry and change.entry.record and change.entry.record.status is ReferralStatus.INELIGIBLE
    assert [type(e) for _, e in change.events] == [ReferralErased]
    assert "retention policy" in change.entry.record.history[-1].summary


def test_erasure_is_idempotent_and_a_repeat_after_a_crash_publishes_the_same_events_again() -> None:
    entry, _ = submitted()
    command_id = uuid.uuid4()
    first = erase(entry, erase_command(), command_id, NOW)
    assert first.entry is not None
    again = erase(first.entry, erase_command(), command_id, NOW + timedelta(minutes=1))
    assert again.entry is None
    assert [(i, e.model_dump()) for i, e in again.events] == [(i, e.model_dump()) for i, e in first.events]
    assert erase(first.entry, erase_command(), uuid.uuid4(), NOW).events == []  # another request: nothing


def test_an_erased_referral_cannot_be_amended_resubmitted_or_withdrawn() -> None:
    entry, _ = submitted(submission(risk__level="low"))
    erased = erase(entry, erase_command(), uuid.uuid4(), NOW).entry
    assert erased is not None
    for amend in (False, True):
        with pytest.raises(ReferralErasedError):
            submit(erased, command(amend=amend), uuid.uuid4(), POLICY, NOW, "u")
    withdrawal = WithdrawReferral(referral_id=RID, agency_id="mappa", reason="x", received_at=NOW)
    with pytest.raises(ReferralErasedError):
        withdraw(erased, withdrawal, uuid.uuid4(), NOW)
    with pytest.raises(UnknownReferral):
        erase(None, erase_command(), uuid.uuid4(), NOW)


def test_retention_is_due_after_the_closing_day_plus_the_period() -> None:
    policy = RetentionPolicy(closed_days=30, ineligible_days=7)
    ineligible, _ = submitted(submission(risk__level="low"))
    eligible, _ = submitted()
    assert ineligible.record and eligible.record
    assert closed_on(ineligible.record) == NOW.date() and closed_on(eligible.record) is None
    assert not due_for_erasure(ineligible.record, NOW.date() + timedelta(days=6), policy)
    assert due_for_erasure(ineligible.record, NOW.date() + timedelta(days=7), policy)
    assert not due_for_erasure(eligible.record, NOW.date() + timedelta(days=3650), policy)  # still open

    formed_at = NOW + timedelta(days=10)
    formed = on_matching_event(eligible, sample(CircleFormed), uuid.uuid4(), formed_at).entry
    assert formed and formed.record and formed.record.status is ReferralStatus.CIRCLE_FORMED
    assert closed_on(formed.record) == formed_at.date()
    later = formed_at + timedelta(days=30)
    assert [r.referral_id for r in due([formed.record, ineligible.record], later, policy)] == [RID, RID]
    erased = erase(ReferralEntry(record=formed.record), erase_command("retention"), uuid.uuid4(), later)
    assert erased.entry and erased.entry.record
    assert not due_for_erasure(erased.entry.record, later.date() + timedelta(days=999), policy)
