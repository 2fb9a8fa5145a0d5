"""The matching workflow over the whole pool and every case, one inbox event at a time.

Each ``on_*`` method is one step: it changes cases and the pool and returns the events to publish, their
ids derived from the id of the inbox event that caused them. A step that fails part-way is undone
(``rollback``), so the in-memory state always matches what the worker will persist (``changed``).

Holds (volunteer → open proposal) and circles (volunteer → circles) are derived from the cases, so they
can never disagree with them; a volunteer is never in two open proposals because a held volunteer fails
a hard rule for every other referral.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.common import Outcome
from schemas.envelope import Event
from schemas.events.circles import CircleEnded
from schemas.events.matching import (
    CircleFormed,
    MatchDecided,
    MatchDeferred,
    MatchProposed,
    ProposalCancelled,
    ProposalFlag,
    ReminderKind,
    VolunteerReminderDue,
)
from schemas.events.referrals import ReferralAssessed, ReferralErased, ReferralWithdrawn
from schemas.events.volunteers import VolunteerRecord
from services.matching.domain.cases import Case, CaseStatus, CircleRecord, ProposalRecord
from services.matching.domain.matcher import NoCircle, Proposal, Request, propose
from services.matching.domain.policy import MatchingPolicy
from services.matching.domain.pool import Load, Pool
from services.runtime.ids import derive_id

SCHEME_TIMEZONE = ZoneInfo("Europe/London")
Emitted = list[tuple[uuid.UUID, Event]]
CloseReason = Literal["referral_withdrawn", "referral_no_longer_eligible"]


class DecisionRefused(Exception):
    """A coordinator's decision that cannot apply (unknown proposal, volunteer not in it)."""


def scheme_day(moment: datetime) -> date:
    return moment.astimezone(SCHEME_TIMEZONE).date()


def target_year(day: date, policy: MatchingPolicy) -> int:
    """The year the target counts in, named by the year it starts in (2026 = April 2026 to March 2027)."""
    return day.year if day.month >= policy.target_year_starts_month else day.year - 1


@dataclass
class _Undo:
    cases: list[tuple[uuid.UUID, Case | None]] = field(default_factory=list)
    volunteers: list[tuple[str, VolunteerRecord | None]] = field(default_factory=list)


class Matching:
    def __init__(
        self, policy: MatchingPolicy, records: Iterable[VolunteerRecord] = (), cases: Iterable[Case] = ()
    ) -> None:
        self.policy = policy
        self.pool = Pool(policy, records)
        self.cases: dict[uuid.UUID, Case] = {}
        self.load = Load()
        self.formed_per_year: dict[int, int] = {}
        self._undo: _Undo | None = None
        self._changed_cases: dict[uuid.UUID, Case] = {}
        self._changed_volunteers: dict[str, VolunteerRecord] = {}
        for case in cases:
            self._index(case, +1)
            self.cases[case.referral_id] = case

    # -- steps ---------------------------------------------------------------------------------------------

    def on_assessed(
        self, event: ReferralAssessed, cause: uuid.UUID, at: datetime, correlation_id: str = ""
    ) -> Emitted:
        case = self.cases.get(event.referral_id)
        if case is not None and cause in case.applied:
            return []
        emitted: Emitted = []
        if event.decision.outcome is not Outcome.ELIGIBLE:
            if case is not None:
                emitted += self._close(case, cause, at, "referral_no_longer_eligible")
            return emitted
        if case is None or case.status is CaseStatus.CLOSED:
            case = Case(
                referral_id=event.referral_id,
                agency_id=event.agency_id,
                agency_reference=event.agency_reference,
                profile=event.profile,
                version=event.version,
                status=CaseStatus.AWAITING_VOLUNTEERS,
                eligible_since=at,
                excluded=case.excluded if case else [],
                proposals=case.proposals if case else [],
                applied=case.remembering(cause) if case else [cause],
                correlation_id=correlation_id or (case.correlation_id if case else ""),
            )
            self._put(case)
            return self._try_to_match(case, cause, at, first=True)
        updated = case.model_copy(
            update={"profile": event.profile, "version": event.version, "applied": case.remembering(cause)}
        )
        self._put(updated)
        if updated.status is CaseStatus.AWAITING_VOLUNTEERS:
            emitted += self._try_to_match(updated, cause, at, first=False)
        return emitted

    def on_withdrawn(self, event: ReferralWithdrawn, cause: uuid.UUID, at: datetime) -> Emitted:
        case = self.cases.get(event.referral_id)
        if case is None or cause in case.applied:
            return []
        return self._close(case, cause, at, "referral_withdrawn")

    def on_erased(self, event: ReferralErased) -> None:
        """The referral's personal data is being erased: its case forgets the coordinator's notes (the one
        personal thing it holds); ids, dates, decisions and the circle stay."""
        case = self.cases.get(event.referral_id)
        if case is None or all(proposal.note is None for proposal in case.proposals):
            return
        proposals = [proposal.model_copy(update={"note": None}) for proposal in case.proposals]
        self._put(case.model_copy(update={"proposals": proposals}))

    def on_circle_ended(self, event: CircleEnded, cause: uuid.UUID, at: datetime) -> Emitted:
        """The circle ended: its volunteers no longer count it towards their limit, so waiting referrals
        are tried again (most urgent first)."""
        case = self.cases.get(event.referral_id)
        if case is None or case.circle is None or case.circle.ended_on is not None or cause in case.applied:
            return []
        circle = case.circle.model_copy(update={"ended_on": event.ended_on})
        self._put(case.model_copy(update={"circle": circle, "applied": case.remembering(cause)}))
        return self._retry_waiting(cause, at)

    def on_volunteer(self, record: VolunteerRecord, cause: uuid.UUID, at: datetime) -> Emitted:
        self._set_volunteer(record)
        volunteer = self.pool.get(record.volunteer_id)
        assert volunteer is not None
        if volunteer.readiness_problems(scheme_day(at)) or record.volunteer_id in self.load.holds:
            return []
        return self._retry_waiting(cause, at)

    def on_decided(self, event: MatchDecided, cause: uuid.UUID, at: datetime) -> Emitted:
        case = self.cases.get(event.referral_id)
        proposal = (
            next((p for p in case.proposals if p.proposal_id == event.proposal_id), None) if case else None
        )
        if case is None or proposal is None:
            raise DecisionRefused(f"no proposal {event.proposal_id} for referral {event.referral_id}")
        if proposal.status != "open":
            return []  # decided already (this decision again, or a second one): nothing changes
        unknown = set(event.rejected_volunteer_ids) - set(proposal.volunteer_ids)
        if unknown:
            raise DecisionRefused(f"volunteers {sorted(unknown)} are not in proposal {event.proposal_id}")
        decided = proposal.model_copy(
            update={
                "status": "accepted" if event.outcome == "accept" else "rejected",
                "decided_at": event.decided_at,
                "decided_by": event.decided_by,
                "note": event.note,
                "rejected_volunteer_ids": event.rejected_volunteer_ids,
            }
        )
        proposals = [decided if p.proposal_id == proposal.proposal_id else p for p in case.proposals]
        if event.outcome == "accept":
            formed = self._form_circle(case.model_copy(update={"proposals": proposals}), decided, cause, at)
            return formed + self._retry_waiting(cause, at)  # its volunteers are no longer held
        rejected = event.rejected_volunteer_ids or proposal.volunteer_ids
        case = case.model_copy(
            update={
                "proposals": proposals,
                "excluded": sorted({*case.excluded, *rejected}),
                "status": CaseStatus.AWAITING_VOLUNTEERS,
                "applied": case.remembering(cause),
            }
        )
        self._put(case)
        emitted = self._try_to_match(case, cause, at, first=True)
        return emitted + self._retry_waiting(cause, at)

    def reminders(self, today: date) -> list[tuple[uuid.UUID, VolunteerReminderDue]]:
        """DBS checks lapsing within the reminder thresholds, and supervision overdue (ids derived, so a
        reminder raised again is the same reminder)."""
        due: list[tuple[uuid.UUID, VolunteerReminderDue]] = []
        for volunteer in self.pool:
            if volunteer.withdrawn:
                continue
            if volunteer.dbs_until is not None:
                days_left = (volunteer.dbs_until - today).days
                crossed = [t for t in sorted(self.policy.dbs_reminder_days) if 0 < days_left <= t]
                if crossed:
                    threshold = crossed[0]
                    event = VolunteerReminderDue(
                        volunteer_id=volunteer.volunteer_id,
                        kind=ReminderKind.DBS_EXPIRING,
                        due_on=volunteer.dbs_until,
                        days_left=threshold,
                        raised_on=today,
                    )
                    due.append(
                        (derive_id(volunteer.volunteer_id, "dbs", volunteer.dbs_until, threshold), event)
                    )
            if volunteer.supervision_until is not None and volunteer.supervision_until < today:
                event = VolunteerReminderDue(
                    volunteer_id=volunteer.volunteer_id,
                    kind=ReminderKind.SUPERVISION_OVERDUE,
                    due_on=volunteer.supervision_until,
                    days_left=(volunteer.supervision_until - today).days,
                    raised_on=today,
                )
                due.append(
                    (derive_id(volunteer.volunteer_id, "supervision", volunteer.supervision_until), event)
                )
        return due

    # -- queries -------------------------------------------------------------------------------------------

    def waiting(self) -> list[Case]:
        waiting = [c for c in self.cases.values() if c.status is CaseStatus.AWAITING_VOLUNTEERS]
        return sorted(waiting, key=Case.priority)

    def formed_in(self, year: int) -> int:
        return self.formed_per_year.get(year, 0)

    # -- transactions ----------------------------------------------------------------------------------------

    def begin(self) -> None:
        self._undo = _Undo()

    def rollback(self) -> None:
        undo, self._undo = self._undo, None
        if undo is None:
            return
        for volunteer_id, record in reversed(undo.volunteers):
            if record is None:
                self.pool.remove(volunteer_id)
            else:
                self.pool.put(record)
        for referral_id, case in reversed(undo.cases):
            self._replace(referral_id, case)

    def changed(self) -> tuple[list[Case], list[VolunteerRecord]]:
        """What the last steps changed, for the worker to persist; clears the record of changes."""
        cases, volunteers = list(self._changed_cases.values()), list(self._changed_volunteers.values())
        self._changed_cases.clear()
        self._changed_volunteers.clear()
        self._undo = None
        return cases, volunteers

    # -- internals -------------------------------------------------------------------------------------------

    def _try_to_match(self, case: Case, cause: uuid.UUID, at: datetime, *, first: bool) -> Emitted:
        """Propose a circle for ``case``, or (if ``first`` time of waiting) say it is deferred."""
        today = scheme_day(at)
        request = Request(str(case.referral_id), case.profile, frozenset(case.excluded))
        result = propose(request, self.pool, self.load, self.policy, today)
        if isinstance(result, NoCircle):
            self._put(
                case.model_copy(
                    update={
                        "status": CaseStatus.AWAITING_VOLUNTEERS,
                        "deferral_reasons": result.reasons,
                        "applied": case.remembering(cause),
                    }
                )
            )
            if not first:
                return []
            deferred = MatchDeferred(
                referral_id=case.referral_id,
                agency_id=case.agency_id,
                reasons=result.reasons,
                policy_version=self.policy.version,
                deferred_at=at,
            )
            return [(derive_id(cause, case.referral_id, "deferred"), deferred)]
        return self._hold(case, result, cause, at)

    def _hold(self, case: Case, result: Proposal, cause: uuid.UUID, at: datetime) -> Emitted:
        year = target_year(scheme_day(at), self.policy)
        flags = list(result.flags)
        if self.formed_in(year) >= self.policy.yearly_target:
            flags.insert(0, ProposalFlag.BEYOND_YEARLY_TARGET)
        record = ProposalRecord(
            proposal_id=derive_id(cause, case.referral_id, "proposal"),
            attempt=len(case.proposals) + 1,
            volunteers=result.volunteers,
            passed_over=result.passed_over,
            flags=flags,
            score=result.score,
            policy_version=self.policy.version,
            proposed_at=at,
        )
        self._put(
            case.model_copy(
                update={
                    "proposals": [*case.proposals, record],
                    "status": CaseStatus.PROPOSED,
                    "deferral_reasons": [],
                    "applied": case.remembering(cause),
                }
            )
        )
        proposed = MatchProposed(
            referral_id=case.referral_id,
            agency_id=case.agency_id,
            proposal_id=record.proposal_id,
            attempt=record.attempt,
            volunteers=record.volunteers,
            passed_over=record.passed_over,
            flags=record.flags,
            score=record.score,
            risk_level=case.profile.risk_level,
            policy_version=record.policy_version,
            proposed_at=at,
        )
        return [(derive_id(cause, case.referral_id, "proposed"), proposed)]

    def _form_circle(self, case: Case, proposal: ProposalRecord, cause: uuid.UUID, at: datetime) -> Emitted:
        day = scheme_day(at)
        circle = CircleRecord(
            circle_id=derive_id(cause, case.referral_id, "circle"),
            volunteer_ids=proposal.volunteer_ids,
            formed_at=at,
            formed_on=day,
        )
        self._put(
            case.model_copy(
                update={
                    "circle": circle,
                    "status": CaseStatus.CIRCLE_FORMED,
                    "applied": case.remembering(cause),
                }
            )
        )
        year = target_year(day, self.policy)
        formed = CircleFormed(
            referral_id=case.referral_id,
            agency_id=case.agency_id,
            circle_id=circle.circle_id,
            proposal_id=proposal.proposal_id,
            volunteer_ids=circle.volunteer_ids,
            local_authority=case.profile.local_authority,
            formed_at=at,
            year=year,
            circles_formed_in_year=self.formed_in(year),
            yearly_target=self.policy.yearly_target,
        )
        return [(derive_id(cause, case.referral_id, "formed"), formed)]

    def _close(self, case: Case, cause: uuid.UUID, at: datetime, reason: CloseReason) -> Emitted:
        emitted: Emitted = []
        proposal = case.open_proposal
        if case.status is CaseStatus.CIRCLE_FORMED or case.status is CaseStatus.CLOSED:
            return emitted  # a formed circle is the coordinator's to end; a closed case stays closed
        proposals = case.proposals
        if proposal is not None:
            proposals = [
                p.model_copy(update={"status": "cancelled", "decided_at": at}) if p is proposal else p
                for p in proposals
            ]
            cancelled = ProposalCancelled(
                referral_id=case.referral_id,
                agency_id=case.agency_id,
                proposal_id=proposal.proposal_id,
                reason=reason,
                cancelled_at=at,
            )
            emitted.append((derive_id(cause, case.referral_id, "cancelled"), cancelled))
        self._put(
            case.model_copy(
                update={
                    "status": CaseStatus.CLOSED,
                    "closed_reason": reason,
                    "proposals": proposals,
                    "applied": case.remembering(cause),
                }
            )
        )
        if proposal is not None:
            emitted += self._retry_waiting(cause, at)
        return emitted

    def _retry_waiting(self, cause: uuid.UUID, at: datetime) -> Emitted:
        """A place freed up or a volunteer became ready: try the waiting referrals, most urgent first."""
        emitted: Emitted = []
        for case in self.waiting():
            emitted += self._try_to_match(case, cause, at, first=False)
        return emitted

    def _put(self, case: Case) -> None:
        previous = self.cases.get(case.referral_id)
        if self._undo is not None:
            self._undo.cases.append((case.referral_id, previous))
        self._replace(case.referral_id, case)
        self._changed_cases[case.referral_id] = case

    def _replace(self, referral_id: uuid.UUID, case: Case | None) -> None:
        previous = self.cases.get(referral_id)
        if previous is not None:
            self._index(previous, -1)
        if case is None:
            self.cases.pop(referral_id, None)
            self._changed_cases.pop(referral_id, None)
        else:
            self.cases[referral_id] = case
            self._index(case, +1)

    def _set_volunteer(self, record: VolunteerRecord) -> None:
        if self._undo is not None:
            self._undo.volunteers.append((record.volunteer_id, self.pool.records.get(record.volunteer_id)))
        self.pool.put(record)
        self._changed_volunteers[record.volunteer_id] = record

    def _index(self, case: Case, sign: int) -> None:
        """Add (+1) or remove (-1) a case's holds, circle and count towards the year."""
        proposal = case.open_proposal
        if proposal is not None:
            for volunteer_id in proposal.volunteer_ids:
                if sign > 0:
                    self.load.hold(volunteer_id, str(proposal.proposal_id))
                else:
                    self.load.release(volunteer_id, str(proposal.proposal_id))
        if case.circle is not None:
            year = target_year(case.circle.formed_on, self.policy)
            self.formed_per_year[year] = self.formed_per_year.get(year, 0) + sign
            if case.circle.ended_on is not None:
                return  # an ended circle holds none of its volunteers' capacity
            for volunteer_id in case.circle.volunteer_ids:
                if sign > 0:
                    self.load.join(volunteer_id, str(case.referral_id), case.circle.formed_on)
                else:
                    self.load.leave(volunteer_id, str(case.referral_id), case.circle.formed_on)
