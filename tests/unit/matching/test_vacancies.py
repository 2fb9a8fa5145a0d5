"""The free volunteers index (``Load.vacancies``): a match that walks only the free volunteers once the
passed-over ones are found chooses exactly what the plain walk over every volunteer chooses, through holds,
releases, circles joined and left, volunteers changed and days passing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.common import Gender
from schemas.events.matching import PassedOver
from schemas.events.volunteers import Conflict, VolunteerRecord
from services.matching.domain.matcher import (
    PASSED_OVER_SHOWN,
    SHORTLIST_PER_GENDER,
    Request,
    _candidates,
    _score,
    area_order,
    hard_problems,
    needed_skills,
    propose,
)
from services.matching.domain.policy import MatchingPolicy, load_policy
from services.matching.domain.pool import CHANGES_KEPT, Load, Pool, Volunteer
from tests.samples import profile, volunteer_record
from tests.unit.matching.test_matcher import AREAS, DISTRICTS, drawn_profile

POLICY = load_policy()
TODAY = date(2026, 11, 24)
REFERRALS = ["00000000-0000-4000-8000-0000000000aa", "00000000-0000-4000-8000-0000000000bb"]
SKILLS = ["learning-disability", "mental-health", "language:polish"]


def reference_candidates(
    request: Request, pool: Pool, load: Load, policy: MatchingPolicy, today: date
) -> tuple[list[object], list[PassedOver]]:
    """The oracle: the walk as it was before the index (every volunteer of every bucket, best first)."""
    skills = needed_skills(request.profile)
    areas = area_order(request.profile.local_authority, policy)
    target = max(SHORTLIST_PER_GENDER, policy.circle_size)
    eligible: dict[str, object] = {}
    refused: dict[str, PassedOver] = {}

    def walk(buckets: Iterator[tuple[float, str, list[Volunteer]]]) -> None:
        found = 0
        for area_score, area_code, members in buckets:
            for volunteer in members:
                if found >= target:
                    return
                if volunteer.volunteer_id in eligible:
                    found += 1
                    continue
                if volunteer.volunteer_id in refused:
                    continue
                problems = hard_problems(volunteer, request, load, policy, today)
                if problems:
                    if len(refused) < PASSED_OVER_SHOWN:
                        refused[volunteer.volunteer_id] = PassedOver(
                            volunteer_id=volunteer.volunteer_id, reasons=problems
                        )
                    continue
                eligible[volunteer.volunteer_id] = _score(volunteer, area_score, area_code, skills, policy)
                found += 1

    for gender in Gender:
        walk((score, code, pool.bucket(area, gender)) for area, score, code in areas)
    for skill in skills:
        walk((score, code, pool.skilled(area, skill)) for area, score, code in areas)
    return list(eligible.values()), list(refused.values())


@st.composite
def volunteers(draw: st.DrawFn, index: int) -> VolunteerRecord:
    """Mostly ready on TODAY; some lapse (DBS, supervision) within the days the test walks through."""
    ready = draw(st.integers(0, 9)) < 7
    dbs = draw(
        st.dates(min_value=date(2023, 11, 1), max_value=date(2024, 2, 1))
        if ready
        else st.none() | st.dates(min_value=date(2022, 1, 1), max_value=date(2026, 11, 1))
    )
    supervised = draw(st.none() | st.dates(min_value=date(2026, 9, 1), max_value=date(2026, 11, 23)))
    trained = date(2025, 2, 1) if ready or draw(st.booleans()) else None
    conflicts = draw(st.lists(st.sampled_from(DISTRICTS), max_size=1)) if draw(st.integers(0, 4)) == 0 else []
    return volunteer_record(
        f"v{index:03d}",
        gender=draw(st.sampled_from(list(Gender))),
        local_authority=draw(st.sampled_from(AREAS[:2])),
        postcode_district=draw(st.sampled_from(DISTRICTS)),
        experienced=draw(st.booleans()),
        skills=draw(st.lists(st.sampled_from(SKILLS), max_size=2, unique=True)),
        max_circles=draw(st.none() | st.integers(1, 2)),
        availability=draw(
            st.lists(st.sampled_from(["mon-eve", "tue-eve", "sat-am"]), max_size=3, unique=True)
        ),
        dbs_checked_on=dbs,
        trained_on=trained,
        last_supervised_on=supervised,
        conflicts=[
            Conflict(postcode_district=d, reason="synthetic", declared_on=date(2026, 1, 1)) for d in conflicts
        ],
        withdrawn_on=date(2026, 1, 1) if draw(st.integers(0, 19)) == 0 else None,
    )


@st.composite
def requests(draw: st.DrawFn, ids: list[str]) -> Request:
    prof = drawn_profile(draw, max_zones=2, mental_health=True)
    excluded = draw(st.lists(st.sampled_from(ids), unique=True, max_size=3)) if ids else []
    return Request(draw(st.sampled_from(REFERRALS)), prof, frozenset(excluded))


STEPS = ["hold", "hold", "release", "release", "join", "leave", "volunteer", "match", "match", "match"]


@settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_properties_the_indexed_walk_chooses_what_the_plain_walk_chooses(data: st.DataObject) -> None:
    size = data.draw(st.integers(0, 60), label="size")
    pool = Pool(POLICY, [data.draw(volunteers(i)) for i in range(size)])
    ids = list(pool.volunteers)
    load = Load()
    today = TODAY
    for _ in range(data.draw(st.integers(1, 30), label="steps")):
        step = data.draw(st.sampled_from(STEPS if ids else ["match"]))
        if step == "hold":  # a proposal holds a few volunteers
            proposal = f"p{len(set(load.holds.values()))}"
            for volunteer_id in data.draw(
                st.lists(st.sampled_from(ids), min_size=1, max_size=6, unique=True)
            ):
                load.hold(volunteer_id, proposal)
        elif step == "release" and load.holds:  # a proposal decided or cancelled, or one that held no one
            proposal = data.draw(st.sampled_from([*sorted(set(load.holds.values())), "another"]))
            for volunteer_id in [v for v, p in load.holds.items() if p == proposal]:
                load.release(volunteer_id, proposal)
        elif step == "join":
            formed = data.draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 24)))
            load.join(data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(["r1", "r2", "r3"])), formed)
        elif step == "leave" and any(load.circles.values()):
            volunteer_id = data.draw(st.sampled_from(sorted(v for v, c in load.circles.items() if c)))
            referral, formed = data.draw(st.sampled_from(load.circles[volunteer_id]))
            load.leave(volunteer_id, referral, formed)
        elif step == "volunteer":
            index = data.draw(st.integers(0, size + 2))  # changed, or a new one
            pool.put(data.draw(volunteers(index)))
            ids = list(pool.volunteers)
        elif step == "match":
            today = TODAY + timedelta(days=data.draw(st.sampled_from([0] * 8 + [1, 40, 75])))
            request = data.draw(requests(ids))
            rebuilt = Pool(POLICY, pool.records.values())  # the pool's buckets as a restart builds them
            expected = reference_candidates(request, rebuilt, load, POLICY, today)
            assert _candidates(request, pool, load, POLICY, today) == expected
            fresh = Load(holds=dict(load.holds), circles={v: list(c) for v, c in load.circles.items()})
            assert propose(request, pool, load, POLICY, today) == propose(request, pool, fresh, POLICY, today)


def test_an_index_too_far_behind_the_pool_is_built_again() -> None:
    records = [
        volunteer_record(f"v{i:02d}", gender=Gender.MALE if i % 2 else Gender.FEMALE) for i in range(30)
    ]
    pool = Pool(POLICY, records)
    load = Load(holds={"v00": "p1"})
    request = Request(REFERRALS[0], profile())
    propose(request, pool, load, POLICY, TODAY)
    pool.put(records[3].model_copy(update={"trained_on": None}))  # forgotten by the pool's changes, below
    for _ in range(2 * CHANGES_KEPT + 1):
        pool.put(records[1].model_copy(update={"withdrawn_on": date(2026, 1, 1)}))
    assert pool.changed_since(31) is None
    assert _candidates(request, pool, load, POLICY, TODAY) == reference_candidates(
        request, Pool(POLICY, pool.records.values()), load, POLICY, TODAY
    )
    assert {"v01", "v03"}.isdisjoint(load.vacancies(pool, POLICY, TODAY).free)
