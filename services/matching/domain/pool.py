"""The volunteer pool: each volunteer's standing under the hard rules, and an index for fast matching.

A volunteer can be matched only when vetted (enhanced DBS check in date), trained, supervised within the
interval (or trained within it, if never supervised yet), not withdrawn and under the circle limit.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from schemas.common import Gender, LocalAuthority, Reason
from schemas.events.volunteers import VolunteerRecord
from services.matching.domain.policy import MatchingPolicy

K = TypeVar("K", bound=Hashable)


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True, slots=True)
class Volunteer:
    """A volunteer record reduced to what matching reads, with its dates worked out once."""

    volunteer_id: str
    gender: Gender
    area: LocalAuthority
    district: str
    experienced: bool
    skills: frozenset[str]
    availability: frozenset[str]
    max_circles: int
    withdrawn: bool
    trained: bool
    dbs_checked_on: date | None
    dbs_until: date | None
    supervised_on: date | None
    supervision_until: date | None
    conflict_referrals: frozenset[str]
    conflict_districts: frozenset[str]

    @classmethod
    def of(cls, record: VolunteerRecord, policy: MatchingPolicy) -> Volunteer:
        reference = record.last_supervised_on or record.trained_on
        return cls(
            volunteer_id=record.volunteer_id,
            gender=record.gender,
            area=record.local_authority,
            district=record.postcode_district,
            experienced=record.experienced,
            skills=frozenset(record.skills),
            availability=frozenset(record.availability),
            max_circles=record.max_circles or policy.default_max_circles,
            withdrawn=record.withdrawn_on is not None,
            trained=record.trained_on is not None,
            dbs_checked_on=record.dbs_checked_on,
            dbs_until=add_years(record.dbs_checked_on, policy.dbs_valid_years)
            if record.dbs_checked_on
            else None,
            supervised_on=record.last_supervised_on,
            supervision_until=(
                reference + timedelta(weeks=policy.supervision_interval_weeks) if reference else None
            ),
            conflict_referrals=frozenset(str(c.referral_id) for c in record.conflicts if c.referral_id),
            conflict_districts=frozenset(
                c.postcode_district for c in record.conflicts if c.postcode_district
            ),
        )

    def readiness_problems(self, today: date) -> list[Reason]:
        """The hard rules about the volunteer alone (not about a referral, nor how busy they are)."""
        problems = []
        if self.withdrawn:
            problems.append(Reason(code="withdrawn", message="Has withdrawn from the scheme."))
        if self.dbs_until is None:
            problems.append(Reason(code="dbs_missing", message="No enhanced DBS check recorded."))
        elif self.dbs_until <= today:
            problems.append(
                Reason(code="dbs_expired", message=f"Enhanced DBS check lapsed on {self.dbs_until}.")
            )
        if not self.trained:
            problems.append(Reason(code="not_trained", message="Core training not completed."))
        if self.supervision_until is not None and self.supervision_until < today:
            problems.append(
                Reason(
                    code="supervision_overdue", message=f"Supervision was due by {self.supervision_until}."
                )
            )
        return problems


@dataclass
class Load:
    """How busy each volunteer is: circles they sit in (still active) and open proposals holding them."""

    circles: dict[str, list[tuple[str, date]]] = field(
        default_factory=dict
    )  # volunteer → (referral, formed on)
    holds: dict[str, str] = field(default_factory=dict)  # volunteer → proposal id

    def active_circles(self, volunteer_id: str, today: date, policy: MatchingPolicy) -> list[str]:
        circles = self.circles.get(volunteer_id)
        if not circles:
            return []  # most volunteers: no date arithmetic on the matcher's hot path
        cutoff = add_months(today, -policy.circle_active_months)
        return [referral for referral, formed in circles if formed > cutoff]


def capacity_problems(volunteer: Volunteer, load: Load, today: date, policy: MatchingPolicy) -> list[Reason]:
    active = len(load.active_circles(volunteer.volunteer_id, today, policy))
    if active >= volunteer.max_circles:
        return [
            Reason(code="at_circle_limit", message=f"Already in {active} of {volunteer.max_circles} circles.")
        ]
    return []


class Pool:
    """Volunteers by id, and for matching by (area, gender), experienced first, then by id (deterministic)."""

    def __init__(self, policy: MatchingPolicy, records: Iterable[VolunteerRecord] = ()) -> None:
        self.policy = policy
        self.volunteers: dict[str, Volunteer] = {}
        self.records: dict[str, VolunteerRecord] = {}
        self._by_gender: dict[tuple[LocalAuthority, Gender], list[Volunteer]] | None = None
        self._by_skill: dict[tuple[LocalAuthority, str], list[Volunteer]] | None = None
        for record in records:
            self.put(record)

    def put(self, record: VolunteerRecord) -> Volunteer:
        volunteer = Volunteer.of(record, self.policy)
        self.volunteers[record.volunteer_id] = volunteer
        self.records[record.volunteer_id] = record
        self._by_gender = self._by_skill = None
        return volunteer

    def get(self, volunteer_id: str) -> Volunteer | None:
        return self.volunteers.get(volunteer_id)

    def __len__(self) -> int:
        return len(self.volunteers)

    def __iter__(self) -> Iterator[Volunteer]:
        return iter(self.volunteers.values())

    def bucket(self, area: LocalAuthority, gender: Gender) -> list[Volunteer]:
        """Volunteers of one area and gender, experienced first, then by id."""
        if self._by_gender is None:
            self._by_gender = _index(self.volunteers.values(), lambda v: [(v.area, v.gender)])
        return self._by_gender.get((area, gender), [])

    def skilled(self, area: LocalAuthority, skill: str) -> list[Volunteer]:
        """Volunteers of one area with a skill, experienced first, then by id."""
        if self._by_skill is None:
            self._by_skill = _index(self.volunteers.values(), lambda v: [(v.area, s) for s in v.skills])
        return self._by_skill.get((area, skill), [])


def _index(volunteers: Iterable[Volunteer], keys: Callable[[Volunteer], list[K]]) -> dict[K, list[Volunteer]]:
    index: dict[K, list[Volunteer]] = {}
    for volunteer in volunteers:
        for key in keys(volunteer):
            index.setdefault(key, []).append(volunteer)
    for members in index.values():
        members.sort(key=lambda v: (not v.experienced, v.volunteer_id))
    return index
