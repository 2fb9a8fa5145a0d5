"""The referral aggregate: commands and matching events in, new record and derived-id events out."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings

from schemas.common import AgeBand, ReferralStatus
from schemas.events.circles import CircleEnded
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed
from schemas.events.referrals import (
    ReassessReferral,
    ReferralAssessed,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmitReferral,
    WithdrawReferral,
)
from schemas.partner_api import ReferralSubmission
from services.referrals.domain.minimise import age_band, profile_of
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import (
    ReferralEntry,
    ReferralWithdrawnError,
    SubmissionConflict,
    UnknownReferral,
    on_matching_event,
    reassess,
    submit,
    withdraw,
)
from services.referrals.domain.retention import closed_on
from services.runtime.ids import derive_id
from tests.samples import sample, submission, submission_body
from tests.strategies import submission_bodies

POLICY = load_policy()
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
RID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def command(body: ReferralSubmission | None = None, amend: bool = False) -> SubmitReferral:
    body = body or submission()
    return SubmitReferral(
        referral_id=RID,
        agency_id="mappa",
        submission=body,
        fingerprint=body.fingerprint(),
        amend=amend,
        received_at=NOW,
    )


def submitted(body: ReferralSubmission | None = None) -> tuple[ReferralEntry, uuid.UUID]:
    command_id = uuid.uuid4()
    change = submit(None, command(body), command_id, POLICY, NOW, "http://api/v1/referrals/x")
    assert change.entry is not None
    return change.entry, command_id


def test_a_submission_is_recorded_assessed_and_announced_minimised() -> None:
    command_id = uuid.uuid4()
    change = submit(None, command(), command_id, POLICY, NOW, "http://api/v1/referrals/x")
    assert change.entry and change.entry.record
    record = change.entry.record
    assert record.status is ReferralStatus.ELIGIBLE and record.version == 1
    assert [type(e) for _, e in change.events] == [ReferralSubmitted, ReferralAssessed]
    assert [i for i, _ in change.events] == [
        derive_id(command_id, "submitted"),
        derive_id(command_id, "assessed"),
    ]
    assert [h.event_id for h in record.history] == [i for i, _ in change.events]
    for _, event in change.events:
        text = event.model_dump_json()
        for personal in (
            "Testy",
            "Fictionalperson",
            "1979-03-02",
            "2004/0123456X",
            "Ada Placeholder",
            "Invented",
        ):
            assert personal not in text


def test_redelivered_identical_and_conflicting_submissions() -> None:
    entry, command_id = submitted()
    again = submit(entry, command(), command_id, POLICY, NOW, "u")
    assert again.entry is None and again.events == []
    identical = submit(entry, command(), uuid.uuid4(), POLICY, NOW, "u")
    assert identical.entry is None and identical.events == []
    with pytest.raises(SubmissionConflict):
        submit(entry, command(submission(risk__level="medium")), uuid.uuid4(), POLICY, NOW, "u")


def test_an_amendment_is_a_new_version_assessed_again() -> None:
    entry, _ = submitted(submission(custody__expected_release_date=None))
    assert entry.record and entry.record.status is ReferralStatus.NEEDS_INFORMATION
    change = submit(entry, command(submission(), amend=True), uuid.uuid4(), POLICY, NOW, "u")
    assert change.entry and change.entry.record
    assert change.entry.record.version == 2 and change.entry.record.status is ReferralStatus.ELIGIBLE
    submitted_event = change.events[0][1]
    assert isinstance(submitted_event, ReferralSubmitted) and submitted_event.version == 2
    assert len(change.entry.record.history) == 4
    with pytest.raises(UnknownReferral):
        submit(None, command(amend=True), uuid.uuid4(), POLICY, NOW, "u")


def test_an_eligible_amendment_keeps_matching_progress_but_an_ineligible_one_does_not() -> None:
    entry, _ = submitted()
    proposed = on_matching_event(entry, sample(MatchProposed), uuid.uuid4(), NOW).entry
    assert proposed and proposed.record and proposed.record.status is ReferralStatus.PROPOSED
    kept = submit(
        proposed, command(submission(needs__mental_health=True), amend=True), uuid.uuid4(), POLICY, NOW, "u"
    )
    assert kept.entry and kept.entry.record and kept.entry.record.status is ReferralStatus.PROPOSED
    dropped = submit(
        proposed, command(submission(risk__level="low"), amend=True), uuid.uuid4(), POLICY, NOW, "u"
    )
    assert dropped.entry and dropped.entry.record and dropped.entry.record.status is ReferralStatus.INELIGIBLE
    late = on_matching_event(dropped.entry, sample(MatchDeferred), uuid.uuid4(), NOW)
    assert late.entry and late.entry.record and late.entry.record.status is ReferralStatus.INELIGIBLE


def test_withdrawal_is_final_and_idempotent() -> None:
    entry, _ = submitted()
    withdrawal = WithdrawReferral(referral_id=RID, agency_id="mappa", reason="moved away", received_at=NOW)
    change = withdraw(entry, withdrawal, uuid.uuid4(), NOW)
    assert change.entry and change.entry.record and change.entry.record.status is ReferralStatus.WITHDRAWN
    assert isinstance(change.events[0][1], ReferralWithdrawn)
    assert "moved away" not in change.events[0][1].model_dump_json()
    assert withdraw(change.entry, withdrawal, uuid.uuid4(), NOW).events == []
    with pytest.raises(ReferralWithdrawnError):
        submit(
            change.entry,
            command(submission(risk__level="medium"), amend=True),
            uuid.uuid4(),
            POLICY,
            NOW,
            "u",
        )
    with pytest.raises(UnknownReferral):
        withdraw(None, withdrawal, uuid.uuid4(), NOW)
    proposed = on_matching_event(change.entry, sample(MatchProposed), uuid.uuid4(), NOW)
    assert (
        proposed.entry and proposed.entry.record and proposed.entry.record.status is ReferralStatus.WITHDRAWN
    )


def test_a_deferred_referral_is_reassessed_when_its_release_comes_into_the_window() -> None:
    entry, _ = submitted(submission(custody__expected_release_date="2028-01-15"))
    assert entry.record and entry.record.status is ReferralStatus.DEFERRED
    assert entry.record.decision and entry.record.decision.reassess_on == date(2027, 7, 15)
    early = reassess(
        entry, ReassessReferral(referral_id=RID, as_of=date(2027, 7, 14)), uuid.uuid4(), POLICY, NOW
    )
    assert early.entry is None
    due_id = uuid.uuid4()
    due = reassess(entry, ReassessReferral(referral_id=RID, as_of=date(2027, 7, 15)), due_id, POLICY, NOW)
    assert due.entry and due.entry.record and due.entry.record.status is ReferralStatus.ELIGIBLE
    assert due.events[0][0] == derive_id(due_id, "assessed")
    again = reassess(
        due.entry, ReassessReferral(referral_id=RID, as_of=date(2027, 8, 1)), uuid.uuid4(), POLICY, NOW
    )
    assert again.entry is None


def test_matching_events_drive_status_and_history_once() -> None:
    entry, _ = submitted()
    statuses = []
    events: list[MatchDeferred | MatchProposed | CircleFormed | CircleEnded] = [
        sample(MatchDeferred),
        sample(MatchProposed),
        sample(CircleFormed),
        sample(CircleEnded),
    ]
    for event in events:
        event_id = uuid.uuid4()
        change = on_matching_event(entry, event, event_id, NOW)
        assert change.entry
        entry = change.entry
        assert on_matching_event(entry, event, event_id, NOW).entry is None  # de-duplicated
        assert entry.record
        statuses.append(entry.record.status)
    assert statuses == [
        ReferralStatus.AWAITING_VOLUNTEERS,
        ReferralStatus.PROPOSED,
        ReferralStatus.CIRCLE_FORMED,
        ReferralStatus.CIRCLE_ENDED,
    ]
    assert entry.record is not None and entry.record.history[-1].summary.startswith("Circle ended completed")
    assert closed_on(entry.record) == NOW.date()  # retention runs from the ending


def test_a_matching_event_before_the_record_is_parked_then_applied() -> None:
    early_id = uuid.uuid4()
    parked = on_matching_event(None, sample(MatchProposed), early_id, NOW)
    assert parked.entry and parked.entry.record is None and len(parked.entry.parked) == 1
    change = submit(parked.entry, command(), uuid.uuid4(), POLICY, NOW, "u")
    assert change.entry and change.entry.record
    assert change.entry.record.status is ReferralStatus.PROPOSED
    assert change.entry.record.has_event(early_id)


def test_age_bands_and_profile() -> None:
    assert age_band(date(2008, 11, 25), date(2026, 11, 24)) is AgeBand.UNDER_18
    assert age_band(date(2008, 11, 24), date(2026, 11, 24)) is AgeBand.FROM_18_TO_24
    assert age_band(date(1961, 1, 1), date(2026, 11, 24)) is AgeBand.FROM_65
    profile = profile_of(submission(custody__in_custody=False), date(2026, 11, 24))
    assert profile.expected_release_date is None and profile.age_band is AgeBand.FROM_45_TO_54


@settings(max_examples=200, deadline=None)
@given(submission_bodies())
def test_any_valid_submission_gets_exactly_one_decision(body: dict[str, Any]) -> None:
    change = submit(None, command(ReferralSubmission.model_validate(body)), uuid.uuid4(), POLICY, NOW, "u")
    decisions = [event for _, event in change.events if isinstance(event, ReferralAssessed)]
    assert len(decisions) == 1
    assert change.entry and change.entry.record and change.entry.record.decision == decisions[0].decision
    assert change.entry.record.status.value == decisions[0].decision.outcome.value


def test_sample_body_is_what_the_brief_shows() -> None:
    assert submission_body()["core_member"]["postcode_district"] == "HU5"
