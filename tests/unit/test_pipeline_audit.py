"""The shared audit of the scale-out, fault and fuzz tests (``tests/pipeline.py``) can fail: each hole it
had is tried here on made-up counts, and its supervisor gives up on a crash loop."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.common import ReferralStatus
from services.referral_progress.progress import ReferralProgress
from tests.pipeline import EXPECTED_MESSAGES, MAX_RESTARTS, SEND_CONCURRENCY, Audit, Member, Pipeline
from tests.processes import ServiceProcess

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def clean(count: int = 3) -> Audit:
    """What a run with nothing lost and nothing twice leaves: every count exactly one."""
    accepted = {str(uuid.uuid4()) for _ in range(count)}
    audit = Audit(accepted)
    for referral in accepted:
        audit.submitted[referral].add(uuid.uuid4())
        audit.decisions[referral].add(uuid.uuid4())
        audit.outcome[referral] = "eligible"
        audit.proposals[referral].add(uuid.uuid4())
        for template, channel in EXPECTED_MESSAGES:
            message = str(uuid.uuid4())
            audit.requested[(referral, template, channel)].add(message)
            (audit.mails if channel == "email" else audit.webhooks)[message] += 1
        audit.coordinator[referral] = ReferralProgress(
            referral_id=uuid.UUID(referral),
            agency_id="probation-hull",
            agency_reference="LOAD-1",
            status=ReferralStatus.PROPOSED,
            proposed_at=NOW,
        )
    return audit


def test_a_clean_run_passes() -> None:
    clean().check()


def test_a_second_submission_under_a_new_id_fails() -> None:
    audit = clean()
    audit.submitted[next(iter(audit.accepted))].add(uuid.uuid4())
    with pytest.raises(AssertionError, match="submitted twice"):
        audit.check()


def test_a_second_decision_fails() -> None:
    audit = clean()
    audit.decisions[next(iter(audit.accepted))].add(uuid.uuid4())
    with pytest.raises(AssertionError, match="decided twice"):
        audit.check()


def repeat(audit: Audit, messages: int, times: int = 2) -> None:
    """Receive ``messages`` of the audit's emails ``times`` in all, each logged as an in-doubt resend."""
    for message in list(audit.mails)[:messages]:
        audit.mails[message] = times
        audit.in_doubt.add(message)


def test_repeats_in_doubt_are_excused_only_within_what_a_killed_sender_had_in_flight() -> None:
    audit = clean(count=SEND_CONCURRENCY)  # two emails a referral: 2 * SEND_CONCURRENCY of them
    repeat(audit, SEND_CONCURRENCY)
    audit.sender_restarts = 1
    audit.check()
    with pytest.raises(AssertionError, match="more than 0 in flight"):
        Audit(**{**audit.__dict__, "sender_restarts": 0}).check()  # nobody was killed: no repeat
    repeat(audit, SEND_CONCURRENCY + 1)
    with pytest.raises(AssertionError, match="in flight"):
        audit.check()


def test_a_message_repeated_more_often_than_its_sender_was_restarted_fails() -> None:
    audit = clean()
    repeat(audit, 1, times=3)
    audit.sender_restarts = 1
    with pytest.raises(AssertionError, match="repeated too often"):
        audit.check()


def test_a_repeat_not_logged_in_doubt_fails() -> None:
    audit = clean()
    message = next(iter(audit.webhooks))
    audit.webhooks[message] = 2
    audit.sender_restarts = 1
    with pytest.raises(AssertionError, match="without being in doubt"):
        audit.check()


def test_the_coordinators_state_must_follow_every_referral_once_as_proposed() -> None:
    audit = clean()
    missing = clean()
    missing.coordinator.pop(next(iter(missing.accepted)))
    with pytest.raises(AssertionError, match="1 referrals missing"):
        missing.check()
    behind = clean()
    referral = next(iter(behind.accepted))
    behind.coordinator[referral] = behind.coordinator[referral].model_copy(
        update={"status": ReferralStatus.ELIGIBLE}
    )
    with pytest.raises(AssertionError, match="statuses"):
        behind.check()
    audit.coordinator_dead_letters = 1
    with pytest.raises(AssertionError, match="undelivered"):
        audit.check()
    assert Counter(p.status for p in clean().coordinator.values()) == {ReferralStatus.PROPOSED: 3}


def supervise_a_crash_loop(
    tmp_path: Path, broker_answers: bool, until: Callable[[Pipeline], bool]
) -> Pipeline:
    """A process that fails at once, every time (a setting it cannot read), under the pipeline's
    supervisor, until ``until`` holds."""
    pipeline = Pipeline("127.0.0.1:9", tmp_path, broker_answers=lambda: broker_answers)
    broken = {"PATH": "/usr/bin:/bin", "CIRCLES_COMMIT_INTERVAL_S": "soon"}
    crashing = ServiceProcess("referrals-worker", broken, name="crash-loop")
    pipeline.members.append(Member(crashing, "http://127.0.0.1:9/ready"))
    crashing.start()
    pipeline.supervise()
    try:
        deadline = time.monotonic() + 60
        while not until(pipeline):
            assert time.monotonic() < deadline, pipeline.restarted
            time.sleep(0.2)
    finally:
        pipeline._stopping.set()
    return pipeline


def test_the_supervisor_gives_up_on_a_crash_loop(tmp_path: Path) -> None:
    """Started again MAX_RESTARTS times while the broker answers, then left down: the test fails."""
    pipeline = supervise_a_crash_loop(tmp_path, True, lambda p: bool(p.gave_up))
    assert pipeline.gave_up == ["crash-loop"]
    assert [name for name, code in pipeline.restarted] == ["crash-loop"] * MAX_RESTARTS
    assert all(code not in (0, None) for _, code in pipeline.restarted)
    with pytest.raises(AssertionError, match="crash loops"):
        pipeline.wait_until_settled(0, seconds=1)


def test_exits_while_the_broker_is_away_are_no_crash_loop(tmp_path: Path) -> None:
    pipeline = supervise_a_crash_loop(tmp_path, False, lambda p: len(p.restarted) > MAX_RESTARTS)
    assert pipeline.gave_up == [] and pipeline.crashed == []
