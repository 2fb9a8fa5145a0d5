"""What the coordinator sees: volunteers with their standing, and proposals in the order they wait.

Built from the matching service's own topics: volunteer records (the latest of each) and the matcher's
cases (proposals, decisions, circles). ``MatchingState`` is one reading of both; the CLI reads once,
the API keeps a live view (``LiveMatchingState``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date

from schemas.coordinator_api import ProposalView, VolunteerView
from schemas.events.circles import circle_id_of
from schemas.events.volunteers import VolunteerRecord, VolunteerRegistered
from schemas.topics import MATCHING_CASES, VOLUNTEERS
from services.matching.domain.cases import Case, CaseStatus
from services.matching.domain.policy import MatchingPolicy
from services.matching.domain.pool import capacity_problems
from services.matching.domain.workflow import Matching
from services.protection.sealer import Sealer
from services.runtime.kafka import CompactedView, read_compacted
from services.runtime.supervision import together


def volunteer_parser(sealer: Sealer) -> Callable[[bytes], VolunteerRecord]:
    """Every volunteer event carries the whole record under ``volunteer`` (its name sealed)."""
    return lambda value: sealer.parse(VolunteerRegistered, value).volunteer


class MatchingState:
    def __init__(
        self, policy: MatchingPolicy, records: Iterable[VolunteerRecord], cases: Iterable[Case]
    ) -> None:
        self.policy = policy
        self.records = {record.volunteer_id: record for record in records}
        self.matching = Matching(policy, self.records.values(), cases)

    @property
    def cases(self) -> dict[uuid.UUID, Case]:
        return self.matching.cases

    def volunteers(self, today: date) -> list[VolunteerView]:
        load = self.matching.load
        circle_ids: dict[str, list[str]] = {}
        active: dict[str, set[str]] = {
            v: set(load.active_circles(v, today, self.policy)) for v in load.circles
        }
        for case in self.cases.values():
            if case.circle is not None:
                for volunteer_id in case.circle.volunteer_ids:
                    if str(case.referral_id) in active.get(volunteer_id, set()):
                        # named as `circles circle show` and the partner API name it
                        circle_ids.setdefault(volunteer_id, []).append(circle_id_of(case.referral_id))
        views = []
        for volunteer in sorted(self.matching.pool, key=lambda v: v.volunteer_id):
            record = self.records[volunteer.volunteer_id]
            problems = volunteer.readiness_problems(today) + capacity_problems(
                volunteer, load, today, self.policy
            )
            hold = load.holds.get(volunteer.volunteer_id)
            views.append(
                VolunteerView(
                    volunteer_id=volunteer.volunteer_id,
                    name=record.name,
                    gender=volunteer.gender,
                    local_authority=volunteer.area,
                    postcode_district=volunteer.district,
                    experienced=volunteer.experienced,
                    skills=sorted(volunteer.skills),
                    availability=sorted(volunteer.availability),
                    max_circles=volunteer.max_circles,
                    matchable=not problems,
                    not_matchable_because=[problem.code for problem in problems],
                    open_proposals=[uuid.UUID(hold)] if hold else [],
                    circles=circle_ids.get(volunteer.volunteer_id, []),
                    dbs_checked_on=volunteer.dbs_checked_on,
                    dbs_expires_on=volunteer.dbs_until,
                    trained_on=record.trained_on,
                    last_supervised_on=volunteer.supervised_on,
                    supervision_due_on=volunteer.supervision_until,
                    withdrawn=volunteer.withdrawn,
                    registered_on=record.registered_on,
                    withdrawn_on=record.withdrawn_on,
                )
            )
        return views

    def proposals(self, status: str | None = None) -> list[ProposalView]:
        """Open proposals in priority order (risk, then release date), then the decided ones, newest first."""
        open_cases = sorted(
            (c for c in self.cases.values() if c.status is CaseStatus.PROPOSED and c.open_proposal),
            key=Case.priority,
        )
        rank = {case.referral_id: place for place, case in enumerate(open_cases, start=1)}
        views = []
        for case in self.cases.values():
            for proposal in case.proposals:
                if status and proposal.status != status:
                    continue
                views.append(
                    ProposalView(
                        proposal_id=proposal.proposal_id,
                        referral_id=case.referral_id,
                        agency_id=case.agency_id,
                        agency_reference=case.agency_reference,
                        attempt=proposal.attempt,
                        status=proposal.status,
                        volunteers=proposal.volunteers,
                        passed_over=proposal.passed_over,
                        flags=proposal.flags,
                        score=proposal.score,
                        risk_level=case.profile.risk_level,
                        local_authority=case.profile.local_authority,
                        priority=rank.get(case.referral_id) if proposal.status == "open" else None,
                        proposed_at=proposal.proposed_at,
                        decided_at=proposal.decided_at,
                        decided_by=proposal.decided_by,
                        note=proposal.note,
                        rejected_volunteer_ids=proposal.rejected_volunteer_ids,
                    )
                )
        return sorted(views, key=lambda v: (v.priority is None, v.priority or 0, -v.proposed_at.timestamp()))

    def proposal(self, proposal_id: uuid.UUID) -> tuple[Case, ProposalView] | None:
        for view in self.proposals():
            if view.proposal_id == proposal_id:
                return self.cases[view.referral_id], view
        return None


async def read_state(
    bootstrap_servers: str, policy: MatchingPolicy, sealer: Sealer, prefix: str = ""
) -> MatchingState:
    records = await read_compacted(
        bootstrap_servers, prefix + VOLUNTEERS.name, volunteer_parser(sealer), sealer=sealer
    )
    cases = await read_compacted(
        bootstrap_servers, prefix + MATCHING_CASES.name, sealer.parser(Case), sealer=sealer
    )
    return MatchingState(policy, records.values(), cases.values())


class LiveMatchingState:
    """Both topics kept current in the background; ``state()`` re-reads only after a change."""

    def __init__(
        self, bootstrap_servers: str, policy: MatchingPolicy, sealer: Sealer, prefix: str = ""
    ) -> None:
        self.policy = policy
        self._dirty = True
        self._state: MatchingState | None = None
        self.volunteer_view: CompactedView[VolunteerRecord] = CompactedView(
            bootstrap_servers,
            prefix + VOLUNTEERS.name,
            volunteer_parser(sealer),
            on_change=self._changed,
            sealer=sealer,
        )
        self.case_view: CompactedView[Case] = CompactedView(
            bootstrap_servers,
            prefix + MATCHING_CASES.name,
            sealer.parser(Case),
            on_change=self._changed,
            sealer=sealer,
        )

    def _changed(self, _: str, __: object) -> None:
        self._dirty = True

    async def start(self) -> None:
        await together(self.volunteer_view.start(), self.case_view.start())

    async def stop(self) -> None:
        await self.case_view.stop()
        await self.volunteer_view.stop()

    async def sync(self) -> None:
        await together(self.volunteer_view.sync(), self.case_view.sync())

    def state(self) -> MatchingState:
        if self._dirty or self._state is None:
            self._state = MatchingState(self.policy, self.volunteer_view.values(), self.case_view.values())
            self._dirty = False
        return self._state
