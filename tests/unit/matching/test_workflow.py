"""The matching workflow: deferral and retry, decisions, withdrawal, the yearly target, idempotency,
and invariants over random sequences of events (hypothesis state machine)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from schemas.common import Gender, LocalAuthority, Outcome, RiskLevel
from schemas.events.circles import CircleEnded, CircleOutcome, EndReason, circle_id_of
from schemas.events.matching import (
    CircleFormed,
    MatchDecided,
    MatchDeferred,
    MatchProposed,
    ProposalCancelled,
    ProposalFlag,
    ReminderKind,
)
from schemas.events.referrals import ReferralAssessed, ReferralErased, ReferralWithdrawn
from schemas.events.volunteers import VolunteerRecord
from schemas.partner_api import Decision
from services.matching.domain.cases import CaseStatus
from services.matching.domain.matcher import NoCircle, Request, hard_problems, propose
from services.matching.domain.policy import load_policy
from services.matching.domain.pool import Load
from services.matching.domain.workflow import DecisionRefused, Matching
from tests.samples import profile, volunteer_record
from tests.unit.matching.test_matcher import ready

POLICY = load_policy()
AT = datetime(2026, 11, 24, 10, tzinfo=UTC)


def assessed(
    referral: uuid.UUID, outcome: Outcome = Outcome.ELIGIBLE, version: int = 1, **profile_changes: Any
) -> ReferralAssessed:
    return ReferralAssessed(
        referral_id=referral,
        agency_id="mappa",
        agency_reference=f"REF-{str(referral)[:8]}",
        version=version,
        decision=Decision(outcome=outcome, reasons=[], policy_version="t", decided_at=AT),
        profile=profile().model_copy(update=profile_changes),
    )


def decided(
    case_referral: uuid.UUID, proposal_id: uuid.UUID, outcome: str, rejected: list[str] | None = None
) -> MatchDecided:
    return MatchDecided(
        referral_id=case_referral,
        agency_id="mappa",
        decision_id=uuid.uuid4(),
        proposal_id=proposal_id,
        outcome=outcome,
        rejected_volunteer_ids=rejected or [],
        decided_by="coordinator",
        decided_at=AT,
    )


def team(n: int, prefix: str = "v", **overrides: Any) -> list[VolunteerRecord]:
    return [
        ready(f"{prefix}{i}", gender=Gender.MALE if i % 2 else Gender.FEMALE, **overrides) for i in range(n)
    ]


def step(matching: Matching, method: str, *args: Any) -> list[Any]:
    matching.begin()
    emitted = getattr(matching, method)(*args, uuid.uuid4(), AT)
    matching.changed()
    return [event for _, event in emitted]


def test_an_eligible_referral_gets_a_proposal_holding_its_volunteers() -> None:
    matching = Matching(POLICY, team(6))
    referral = uuid.uuid4()
    events = step(matching, "on_assessed", assessed(referral))
    assert [type(e) for e in events] == [MatchProposed]
    proposal = events[0]
    assert len(proposal.volunteers) == POLICY.circle_size
    assert set(matching.load.holds) == {v.volunteer_id for v in proposal.volunteers}
    assert matching.cases[referral].status is CaseStatus.PROPOSED


def test_deferred_until_a_volunteer_completes_training_then_matched() -> None:
    matching = Matching(POLICY, [*team(3), ready("late", trained_on=None)])
    referral = uuid.uuid4()
    events = step(matching, "on_assessed", assessed(referral))
    assert [type(e) for e in events] == [MatchDeferred]
    assert matching.cases[referral].status is CaseStatus.AWAITING_VOLUNTEERS
    trained = ready("late", trained_on=date(2026, 11, 20))
    events = step(matching, "on_volunteer", trained)
    assert [type(e) for e in events] == [MatchProposed]
    assert "late" in [v.volunteer_id for v in events[0].volunteers]


def test_rejection_frees_volunteers_and_proposes_again_without_the_rejected() -> None:
    matching = Matching(POLICY, team(6))
    referral = uuid.uuid4()
    first = step(matching, "on_assessed", assessed(referral))[0]
    rejected = first.volunteers[0].volunteer_id
    events = step(matching, "on_decided", decided(referral, first.proposal_id, "reject", [rejected]))
    assert [type(e) for e in events] == [MatchProposed]
    second = events[0]
    assert second.attempt == 2 and rejected not in [v.volunteer_id for v in second.volunteers]
    assert rejected not in matching.load.holds
    assert rejected in matching.cases[referral].excluded


def test_rejecting_everyone_with_no_alternative_defers() -> None:
    matching = Matching(POLICY, team(4))
    referral = uuid.uuid4()
    first = step(matching, "on_assessed", assessed(referral))[0]
    events = step(matching, "on_decided", decided(referral, first.proposal_id, "reject"))
    assert [type(e) for e in events] == [MatchDeferred]
    assert matching.load.holds == {}


def test_acceptance_forms_the_circle_and_counts_towards_the_target() -> None:
    matching = Matching(POLICY, team(4))
    referral = uuid.uuid4()
    proposal = step(matching, "on_assessed", assessed(referral))[0]
    events = step(matching, "on_decided", decided(referral, proposal.proposal_id, "accept"))
    assert [type(e) for e in events] == [CircleFormed]
    formed = events[0]
    assert formed.circles_formed_in_year == 1 and formed.yearly_target == 8 and formed.year == 2026
    assert matching.load.holds == {}
    assert all(len(matching.load.circles[v]) == 1 for v in formed.volunteer_ids)
    again = step(matching, "on_decided", decided(referral, proposal.proposal_id, "accept"))
    assert again == []  # a second decision on a decided proposal changes nothing
    with pytest.raises(DecisionRefused):
        step(matching, "on_decided", decided(referral, uuid.uuid4(), "accept"))


def test_erasure_forgets_the_coordinators_notes_and_keeps_the_decisions_and_the_circle() -> None:
    matching = Matching(POLICY, team(8))
    referral = uuid.uuid4()
    first = step(matching, "on_assessed", assessed(referral))[0]
    rejection = decided(referral, first.proposal_id, "reject").model_copy(update={"note": "a private note"})
    second = step(matching, "on_decided", rejection)[0]
    step(matching, "on_decided", decided(referral, second.proposal_id, "accept"))
    before = matching.cases[referral]
    assert [p.note for p in before.proposals] == ["a private note", None]
    erased = ReferralErased(
        referral_id=referral,
        agency_id="mappa",
        agency_reference="REF-1",
        erased_at=AT,
        reason="request",
        requested_by="cli:tester",
    )
    matching.begin()
    matching.on_erased(erased)
    (changed,), _ = matching.changed()
    assert [p.note for p in changed.proposals] == [None, None]
    assert changed.model_dump(exclude={"proposals"}) == before.model_dump(exclude={"proposals"})
    assert (
        [p.status for p in changed.proposals]
        == [p.status for p in before.proposals]
        == ["rejected", "accepted"]
    )
    matching.begin()
    matching.on_erased(erased)
    assert matching.changed() == ([], [])  # nothing left to forget


def test_proposals_beyond_the_yearly_target_are_flagged() -> None:
    matching = Matching(POLICY, team(4, max_circles=10))
    for _ in range(POLICY.yearly_target):
        referral = uuid.uuid4()
        proposal = step(matching, "on_assessed", assessed(referral))[0]
        assert ProposalFlag.BEYOND_YEARLY_TARGET not in proposal.flags
        step(matching, "on_decided", decided(referral, proposal.proposal_id, "accept"))
    proposal = step(matching, "on_assessed", assessed(uuid.uuid4()))[0]
    assert proposal.flags[0] is ProposalFlag.BEYOND_YEARLY_TARGET


def test_withdrawal_cancels_the_proposal_and_the_freed_volunteers_go_to_the_next_in_line() -> None:
    matching = Matching(POLICY, team(4))
    first, second = uuid.uuid4(), uuid.uuid4()
    proposal = step(matching, "on_assessed", assessed(first))[0]
    assert [type(e) for e in step(matching, "on_assessed", assessed(second))] == [MatchDeferred]
    withdrawn = ReferralWithdrawn(
        referral_id=first, agency_id="mappa", agency_reference="R", version=1, withdrawn_at=AT
    )
    events = step(matching, "on_withdrawn", withdrawn)
    assert [type(e) for e in events] == [ProposalCancelled, MatchProposed]
    assert events[0].proposal_id == proposal.proposal_id and events[0].reason == "referral_withdrawn"
    assert events[1].referral_id == second


def test_no_longer_eligible_cancels_too() -> None:
    matching = Matching(POLICY, team(4))
    referral = uuid.uuid4()
    step(matching, "on_assessed", assessed(referral))
    events = step(matching, "on_assessed", assessed(referral, Outcome.INELIGIBLE, version=2))
    assert [type(e) for e in events] == [ProposalCancelled]
    assert events[0].reason == "referral_no_longer_eligible"
    assert matching.cases[referral].status is CaseStatus.CLOSED and matching.load.holds == {}


def test_waiting_referrals_are_matched_in_priority_order() -> None:
    matching = Matching(POLICY, team(3))
    medium, very_high_late, very_high_soon = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    step(matching, "on_assessed", assessed(medium, risk_level=RiskLevel.MEDIUM))
    step(
        matching,
        "on_assessed",
        assessed(very_high_late, risk_level=RiskLevel.VERY_HIGH, expected_release_date=date(2027, 5, 1)),
    )
    step(
        matching,
        "on_assessed",
        assessed(very_high_soon, risk_level=RiskLevel.VERY_HIGH, expected_release_date=date(2027, 1, 1)),
    )
    assert [c.referral_id for c in matching.waiting()] == [very_high_soon, very_high_late, medium]
    events = step(matching, "on_volunteer", ready("new"))
    assert [e.referral_id for e in events] == [very_high_soon]


def test_the_same_inbox_event_twice_changes_nothing() -> None:
    matching = Matching(POLICY, team(6))
    event, cause = assessed(uuid.uuid4()), uuid.uuid4()
    matching.begin()
    assert matching.on_assessed(event, cause, AT)
    matching.changed()
    matching.begin()
    assert matching.on_assessed(event, cause, AT) == []
    assert matching.changed() == ([], [])


def test_a_failed_step_is_undone() -> None:
    matching = Matching(POLICY, team(6))
    referral = uuid.uuid4()
    matching.begin()
    matching.on_assessed(assessed(referral), uuid.uuid4(), AT)
    matching.rollback()
    assert matching.cases == {} and matching.load.holds == {}
    matching.pool.bucket(LocalAuthority.HULL, Gender.FEMALE)  # the buckets built, as after a match
    matching.begin()
    matching.on_volunteer(ready("extra"), uuid.uuid4(), AT)
    matching.rollback()
    assert matching.pool.get("extra") is None and len(matching.pool) == 6
    assert all(
        "extra" not in {v.volunteer_id for v in matching.pool.bucket(LocalAuthority.HULL, g)} for g in Gender
    )


def test_reminders_at_60_30_and_7_days_and_for_overdue_supervision() -> None:
    today = date(2026, 11, 24)
    records = [
        ready("d61", dbs_checked_on=date(2024, 1, 24)),  # lapses 2027-01-24: 61 days away
        ready("d60", dbs_checked_on=date(2024, 1, 23)),
        ready("d20", dbs_checked_on=date(2023, 12, 14)),
        ready("d7", dbs_checked_on=date(2023, 12, 1)),
        ready("late", last_supervised_on=date(2026, 9, 1)),
        ready("gone", last_supervised_on=date(2026, 9, 1), withdrawn_on=date(2026, 10, 1)),
    ]
    due = {(r.volunteer_id, r.kind, r.days_left) for _, r in Matching(POLICY, records).reminders(today)}
    assert due == {
        ("d60", ReminderKind.DBS_EXPIRING, 60),
        ("d20", ReminderKind.DBS_EXPIRING, 30),
        ("d7", ReminderKind.DBS_EXPIRING, 7),
        ("late", ReminderKind.SUPERVISION_OVERDUE, -28),
    }
    first = Matching(POLICY, records).reminders(today)
    assert first == Matching(POLICY, records).reminders(today)  # same ids: raised twice, sent once


class Workflow(RuleBasedStateMachine):
    """Random sequences of inbox events; after every step the invariants must hold."""

    @initialize(
        pool=st.lists(st.sampled_from(["ready", "ready", "untrained", "lapsed"]), min_size=4, max_size=14)
    )
    def start(self, pool: list[str]) -> None:
        records = []
        for i, kind in enumerate(pool):
            gender = Gender.MALE if i % 2 else Gender.FEMALE
            area = [LocalAuthority.HULL, LocalAuthority.EAST_RIDING][i % 2]
            record = ready(f"v{i:02d}", gender=gender, local_authority=area, max_circles=1 + i % 2)
            if kind == "untrained":
                record = record.model_copy(update={"trained_on": None})
            elif kind == "lapsed":
                record = record.model_copy(update={"dbs_checked_on": date(2020, 1, 1)})
            records.append(record)
        self.matching = Matching(POLICY, records)
        self.rejected: dict[uuid.UUID, set[str]] = {}
        self.referrals = [uuid.UUID(int=i + 1) for i in range(6)]
        self.now = AT

    def _step(self, method: str, *args: Any) -> list[Any]:
        self.now += timedelta(minutes=1)
        self.matching.begin()
        holds_before = dict(self.matching.load.holds)
        emitted = getattr(self.matching, method)(*args, uuid.uuid4(), self.now)
        self.matching.changed()
        for _, event in emitted:
            if isinstance(event, MatchProposed):
                ids = {v.volunteer_id for v in event.volunteers}
                assert not ids & self.rejected.get(event.referral_id, set()), "a rejected volunteer came back"
                case = self.matching.cases[event.referral_id]
                load = Load(
                    holds={v: p for v, p in holds_before.items() if v not in ids},
                    circles=self.matching.load.circles,
                )
                request = Request(str(case.referral_id), case.profile, frozenset(case.excluded))
                for volunteer_id in ids:
                    volunteer = self.matching.pool.get(volunteer_id)
                    assert volunteer is not None
                    problems = hard_problems(volunteer, request, load, POLICY, self.now.date())
                    assert not [p for p in problems if p.code != "held_by_open_proposal"], problems
        return [event for _, event in emitted]

    @rule(
        index=st.integers(0, 5), risk=st.sampled_from([RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.VERY_HIGH])
    )
    def eligible(self, index: int, risk: RiskLevel) -> None:
        self._step("on_assessed", assessed(self.referrals[index], risk_level=risk))

    @rule(index=st.integers(0, 5))
    def no_longer_eligible(self, index: int) -> None:
        self._step("on_assessed", assessed(self.referrals[index], Outcome.INELIGIBLE, version=2))

    @rule(index=st.integers(0, 5))
    def withdrawn(self, index: int) -> None:
        referral = self.referrals[index]
        self._step(
            "on_withdrawn",
            ReferralWithdrawn(
                referral_id=referral,
                agency_id="mappa",
                agency_reference="R",
                version=1,
                withdrawn_at=self.now,
            ),
        )

    @rule(
        volunteer=st.integers(0, 13), change=st.sampled_from(["trained", "vetted", "withdrawn", "supervised"])
    )
    def volunteer_changes(self, volunteer: int, change: str) -> None:
        record = self.matching.pool.records.get(f"v{volunteer:02d}")
        if record is None:
            return
        updates = {
            "trained": {"trained_on": date(2026, 11, 1)},
            "vetted": {"dbs_checked_on": date(2026, 11, 1)},
            "withdrawn": {"withdrawn_on": date(2026, 11, 20)},
            "supervised": {"last_supervised_on": date(2026, 11, 20)},
        }[change]
        self._step("on_volunteer", record.model_copy(update=updates))

    @rule(data=st.data())
    def decision(self, data: st.DataObject) -> None:
        open_cases = [c for c in self.matching.cases.values() if c.open_proposal is not None]
        if not open_cases:
            return
        case = data.draw(st.sampled_from(open_cases))
        proposal = case.open_proposal
        assert proposal is not None
        if data.draw(st.booleans()):
            self._step("on_decided", decided(case.referral_id, proposal.proposal_id, "accept"))
            return
        rejected = data.draw(st.lists(st.sampled_from(proposal.volunteer_ids), unique=True))
        self.rejected.setdefault(case.referral_id, set()).update(rejected or proposal.volunteer_ids)
        self._step("on_decided", decided(case.referral_id, proposal.proposal_id, "reject", rejected))

    @invariant()
    def no_volunteer_in_two_open_proposals(self) -> None:
        if not hasattr(self, "matching"):
            return
        seen: dict[str, uuid.UUID] = {}
        for case in self.matching.cases.values():
            proposal = case.open_proposal
            for volunteer_id in proposal.volunteer_ids if proposal else []:
                assert volunteer_id not in seen, f"{volunteer_id} is in two open proposals"
                seen[volunteer_id] = proposal.proposal_id  # type: ignore[union-attr]
        assert set(seen) == set(self.matching.load.holds)

    @invariant()
    def no_referral_waits_while_a_circle_is_possible(self) -> None:
        if not hasattr(self, "matching"):
            return
        for case in self.matching.waiting():
            request = Request(str(case.referral_id), case.profile, frozenset(case.excluded))
            result = propose(request, self.matching.pool, self.matching.load, POLICY, self.now.date())
            assert isinstance(result, NoCircle), f"{case.referral_id} waits although a circle is possible"

    @invariant()
    def the_free_volunteers_are_those_a_restart_finds(self) -> None:
        if not hasattr(self, "matching"):
            return
        today = self.now.date()
        restarted = Matching(POLICY, self.matching.pool.records.values(), self.matching.cases.values())
        free = self.matching.load.vacancies(self.matching.pool, POLICY, today).free
        assert free.keys() == restarted.load.vacancies(restarted.pool, POLICY, today).free.keys()


TestWorkflowInvariants = Workflow.TestCase
TestWorkflowInvariants.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_volunteer_records_are_synthetic() -> None:
    assert "synthetic" in volunteer_record().name


def test_acceptance_frees_holds_for_volunteers_with_room_for_another_circle() -> None:
    matching = Matching(POLICY, team(6))  # each may sit in two circles
    first, second = uuid.uuid4(), uuid.uuid4()
    proposal = step(matching, "on_assessed", assessed(first))[0]
    assert [type(e) for e in step(matching, "on_assessed", assessed(second))] == [MatchDeferred]
    events = step(matching, "on_decided", decided(first, proposal.proposal_id, "accept"))
    assert [type(e) for e in events] == [CircleFormed, MatchProposed]
    assert events[1].referral_id == second


def _ended(formed: CircleFormed, ended_on: date = date(2026, 11, 24)) -> CircleEnded:
    return CircleEnded(
        referral_id=formed.referral_id,
        circle_id=circle_id_of(formed.referral_id),
        agency_id=formed.agency_id,
        outcome=CircleOutcome.ENDED_EARLY,
        reason=EndReason.MOVED_AWAY,
        ended_on=ended_on,
        volunteer_ids=formed.volunteer_ids,
        ended_at=AT,
    )


def test_an_ended_circle_frees_its_volunteers_and_a_waiting_referral_is_matched() -> None:
    matching = Matching(POLICY, team(4, max_circles=1))  # each may sit in one circle
    first, waiting = uuid.uuid4(), uuid.uuid4()
    proposal = step(matching, "on_assessed", assessed(first))[0]
    (formed,) = step(matching, "on_decided", decided(first, proposal.proposal_id, "accept"))
    assert [type(e) for e in step(matching, "on_assessed", assessed(waiting))] == [MatchDeferred]
    events = step(matching, "on_circle_ended", _ended(formed))
    assert [type(e) for e in events] == [MatchProposed] and events[0].referral_id == waiting
    ended = matching.cases[first].circle
    assert ended is not None and ended.ended_on == date(2026, 11, 24)
    assert all(matching.load.circles[v] == [] for v in formed.volunteer_ids)
    assert matching.formed_in(2026) == 1  # still formed this year: the target counts formations
    rebuilt = Matching(POLICY, matching.pool.records.values(), matching.cases.values())  # after a restart
    assert all(not rebuilt.load.active_circles(v, date(2026, 11, 24), POLICY) for v in formed.volunteer_ids)


def test_a_circle_ending_told_twice_or_for_no_circle_changes_nothing() -> None:
    matching = Matching(POLICY, team(4))
    referral = uuid.uuid4()
    proposal = step(matching, "on_assessed", assessed(referral))[0]
    (formed,) = step(matching, "on_decided", decided(referral, proposal.proposal_id, "accept"))
    step(matching, "on_circle_ended", _ended(formed))
    assert step(matching, "on_circle_ended", _ended(formed, date(2026, 12, 1))) == []
    assert matching.cases[referral].circle.ended_on == date(2026, 11, 24)  # type: ignore[union-attr]
    stranger = formed.model_copy(update={"referral_id": uuid.uuid4()})
    assert step(matching, "on_circle_ended", _ended(stranger)) == []
