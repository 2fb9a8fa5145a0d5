"""The volunteer pool: each volunteer's standing under the hard rules, and indexes for fast matching.

A volunteer can be matched only when vetted (enhanced DBS check in date), trained, supervised within the
interval (or trained within it, if never supervised yet), not withdrawn and under the circle limit.

The pool ranks its volunteers per bucket (area and gender, area and skill); the load keeps, per bucket in
the same order, the volunteers free on a day (ready, not held, under their limit), so that a match walks
the free volunteers, not the busy ones ranked ahead of them.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left, bisect_right, insort
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
    ready_until: date | None
    """The first day they are not ready (DBS lapsed or supervision overdue); None: ready on no day."""

    @classmethod
    def of(cls, record: VolunteerRecord, policy: MatchingPolicy) -> Volunteer:
        reference = record.last_supervised_on or record.trained_on
        dbs_until = (
            add_years(record.dbs_checked_on, policy.dbs_valid_years) if record.dbs_checked_on else None
        )
        supervision_until = (
            reference + timedelta(weeks=policy.supervision_interval_weeks) if reference else None
        )
        ready_until = None
        if record.withdrawn_on is None and record.trained_on is not None and dbs_until is not None:
            overdue = supervision_until + timedelta(days=1) if supervision_until else dbs_until
            ready_until = min(dbs_until, overdue)
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
            dbs_until=dbs_until,
            supervised_on=record.last_supervised_on,
            supervision_until=supervision_until,
            conflict_referrals=frozenset(str(c.referral_id) for c in record.conflicts if c.referral_id),
            conflict_districts=frozenset(
                c.postcode_district for c in record.conflicts if c.postcode_district
            ),
            ready_until=ready_until,
        )

    def ready_on(self, today: date) -> bool:
        """No readiness problem on ``today`` (what ``readiness_problems`` says, without the reasons)."""
        return self.ready_until is not None and today < self.ready_until

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
    """How busy each volunteer is: circles they sit in (still active) and open proposals holding them.

    Change it through ``hold``, ``release``, ``join`` and ``leave`` (read ``holds`` and ``circles`` freely):
    they note who changed, so that the free volunteers (``vacancies``) follow."""

    circles: dict[str, list[tuple[str, date]]] = field(
        default_factory=dict
    )  # volunteer → (referral, formed on)
    holds: dict[str, str] = field(default_factory=dict)  # volunteer → proposal id
    _vacancies: Vacancies | None = field(default=None, init=False, repr=False, compare=False)
    _touched: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def hold(self, volunteer_id: str, proposal_id: str) -> None:
        self.holds[volunteer_id] = proposal_id
        self._touched.add(volunteer_id)

    def release(self, volunteer_id: str, proposal_id: str) -> None:
        """The proposal no longer holds the volunteer (if it still did)."""
        if self.holds.get(volunteer_id) == proposal_id:
            del self.holds[volunteer_id]
            self._touched.add(volunteer_id)

    def join(self, volunteer_id: str, referral_id: str, formed_on: date) -> None:
        self.circles.setdefault(volunteer_id, []).append((referral_id, formed_on))
        self._touched.add(volunteer_id)

    def leave(self, volunteer_id: str, referral_id: str, formed_on: date) -> None:
        circles = self.circles.setdefault(volunteer_id, [])
        if (referral_id, formed_on) in circles:
            circles.remove((referral_id, formed_on))
            self._touched.add(volunteer_id)

    def active_circles(self, volunteer_id: str, today: date, policy: MatchingPolicy) -> list[str]:
        circles = self.circles.get(volunteer_id)
        if not circles:
            return []  # most volunteers: no date arithmetic on the matcher's hot path
        cutoff = add_months(today, -policy.circle_active_months)
        return [referral for referral, formed in circles if formed > cutoff]

    def is_free(self, volunteer: Volunteer, today: date, policy: MatchingPolicy) -> bool:
        """Ready, not held and under their circle limit on ``today``: only the referral's rules are left."""
        return (
            volunteer.ready_on(today)
            and volunteer.volunteer_id not in self.holds
            and len(self.active_circles(volunteer.volunteer_id, today, policy)) < volunteer.max_circles
        )

    def vacancies(self, pool: Pool, policy: MatchingPolicy, today: date) -> Vacancies:
        """The pool's volunteers free on ``today``, per bucket: built again for another pool, policy or day,
        else brought up to date for the volunteers changed, held, released, in or out of a circle since."""
        vacancies = self._vacancies
        changed = None
        if vacancies is not None and vacancies.fits(pool, policy, today):
            changed = pool.changed_since(vacancies.revision)
        if vacancies is None or changed is None:
            vacancies = self._vacancies = Vacancies(pool, self, policy, today)
        else:
            for volunteer_id in {*changed, *self._touched}:
                volunteer = pool.get(volunteer_id)
                free = volunteer is not None and self.is_free(volunteer, today, policy)
                vacancies.update(volunteer_id, volunteer if free else None)
            vacancies.revision = pool.revision
        self._touched.clear()
        return vacancies


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
        self._buckets: Buckets | None = None
        self.revision = 0
        """Raised at every change of a volunteer (``changed_since`` says whose)."""
        self._changed: list[str] = []  # the volunteers changed at the last revisions, oldest first
        for record in records:
            self.put(record)

    def put(self, record: VolunteerRecord) -> Volunteer:
        volunteer = Volunteer.of(record, self.policy)
        previous = self.volunteers.get(record.volunteer_id)
        self.volunteers[record.volunteer_id] = volunteer
        self.records[record.volunteer_id] = record
        if self._buckets is not None:
            if previous is not None:
                self._buckets.discard(previous)
            self._buckets.add(volunteer)
        self._note(record.volunteer_id)
        return volunteer

    def remove(self, volunteer_id: str) -> None:
        previous = self.volunteers.pop(volunteer_id, None)
        self.records.pop(volunteer_id, None)
        if self._buckets is not None and previous is not None:
            self._buckets.discard(previous)
        self._note(volunteer_id)

    def changed_since(self, revision: int) -> list[str] | None:
        """The volunteers changed since ``revision`` (None: too long ago to say)."""
        start = revision - (self.revision - len(self._changed))
        return None if start < 0 else self._changed[start:]

    def get(self, volunteer_id: str) -> Volunteer | None:
        return self.volunteers.get(volunteer_id)

    def __len__(self) -> int:
        return len(self.volunteers)

    def __iter__(self) -> Iterator[Volunteer]:
        return iter(self.volunteers.values())

    def bucket(self, area: LocalAuthority, gender: Gender) -> list[Volunteer]:
        """Volunteers of one area and gender, experienced first, then by id."""
        return self._index().bucket(area, gender)

    def skilled(self, area: LocalAuthority, skill: str) -> list[Volunteer]:
        """Volunteers of one area with a skill, experienced first, then by id."""
        return self._index().skilled(area, skill)

    def _index(self) -> Buckets:
        if self._buckets is None:
            self._buckets = Buckets(self.volunteers.values())
        return self._buckets

    def _note(self, volunteer_id: str) -> None:
        self.revision += 1
        self._changed.append(volunteer_id)
        if len(self._changed) > 2 * CHANGES_KEPT:
            del self._changed[:CHANGES_KEPT]


CHANGES_KEPT = 1_000
"""Volunteer changes a pool remembers at least (an index further behind is built again)."""


class Buckets:
    """Volunteers per (area, gender) and per (area, skill), each bucket in rank (``rank``)."""

    def __init__(self, volunteers: Iterable[Volunteer]) -> None:
        volunteers = list(volunteers)
        self._by_gender = _index(volunteers, _gender_keys)
        self._by_skill = _index(volunteers, _skill_keys)

    def bucket(self, area: LocalAuthority, gender: Gender) -> list[Volunteer]:
        return self._by_gender.get((area, gender), [])

    def skilled(self, area: LocalAuthority, skill: str) -> list[Volunteer]:
        return self._by_skill.get((area, skill), [])

    def add(self, volunteer: Volunteer) -> None:
        for members in self._lists(volunteer):
            insort(members, volunteer, key=rank)

    def discard(self, volunteer: Volunteer) -> None:
        for members in self._lists(volunteer):
            at = bisect_left(members, rank(volunteer), key=rank)
            if at < len(members) and members[at] is volunteer:
                del members[at]

    def _lists(self, volunteer: Volunteer) -> list[list[Volunteer]]:
        lists = [self._by_gender.setdefault(key, []) for key in _gender_keys(volunteer)]
        return lists + [self._by_skill.setdefault(key, []) for key in _skill_keys(volunteer)]


class Vacancies(Buckets):
    """The volunteers free on one day (ready, not held, under their circle limit) per bucket, in the pool's
    order: once no more passed-over reasons are wanted, a match walks these instead of the whole bucket."""

    def __init__(self, pool: Pool, load: Load, policy: MatchingPolicy, today: date) -> None:
        self.pool, self.policy, self.today, self.revision = pool, policy, today, pool.revision
        self.free = {v.volunteer_id: v for v in pool if load.is_free(v, today, policy)}
        super().__init__(self.free.values())

    def fits(self, pool: Pool, policy: MatchingPolicy, today: date) -> bool:
        return self.pool is pool and self.policy is policy and self.today == today

    def update(self, volunteer_id: str, free: Volunteer | None) -> None:
        """The volunteer is free now (``free``) or not (None): put them in their buckets, or take them out."""
        previous = self.free.pop(volunteer_id, None)
        if previous is not None:
            self.discard(previous)
        if free is not None:
            self.add(free)
            self.free[volunteer_id] = free


def rank(volunteer: Volunteer) -> tuple[bool, str]:
    """A bucket's order: experienced first, then by id."""
    return (not volunteer.experienced, volunteer.volunteer_id)


def ranked_after(members: list[Volunteer], volunteer: Volunteer) -> list[Volunteer]:
    """The members (in rank) ranked after ``volunteer``."""
    return members[bisect_right(members, rank(volunteer), key=rank) :]


def _gender_keys(volunteer: Volunteer) -> list[tuple[LocalAuthority, Gender]]:
    return [(volunteer.area, volunteer.gender)]


def _skill_keys(volunteer: Volunteer) -> list[tuple[LocalAuthority, str]]:
    return [(volunteer.area, skill) for skill in volunteer.skills]


def _index(volunteers: Iterable[Volunteer], keys: Callable[[Volunteer], list[K]]) -> dict[K, list[Volunteer]]:
    index: dict[K, list[Volunteer]] = {}
    for volunteer in volunteers:
        for key in keys(volunteer):
            index.setdefault(key, []).append(volunteer)
    for members in index.values():
        members.sort(key=rank)
    return index
