"""One match against pools of 100, 1,000 and 10,000 volunteers: median and p99 over many referrals.

Synthetic pools spread over the four local authorities with realistic readiness: most volunteers vetted,
trained and supervised, some lapsed or withdrawn, some busy. Each referral asks for a circle with random
area, needs and exclusion zones; a fraction of the pool is held by other proposals.

``--loaded`` (issue 13): one match against 10,000 and 30,000 volunteers under a busy scheme's load: two
fifths of the pool held by pending proposals (the best-ranked ready volunteers, as proposals take them:
thousands of proposals) and a sixth at their circle limit, so a match has to get past them to the free ones.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import date, timedelta
from typing import Any

from schemas.common import Gender, LocalAuthority
from schemas.events.referrals import NeedsProfile
from schemas.events.volunteers import VolunteerRecord
from services.matching.domain.matcher import Request, propose
from services.matching.domain.policy import load_policy
from services.matching.domain.pool import Load, Pool
from tests.samples import profile

POLICY = load_policy()
TODAY = date(2026, 11, 24)
AREAS = [la for la in LocalAuthority if la is not LocalAuthority.OUTSIDE_HUMBERSIDE]
DISTRICTS = {
    LocalAuthority.HULL: ["HU1", "HU3", "HU5", "HU7", "HU9"],
    LocalAuthority.EAST_RIDING: ["HU11", "HU17", "YO15", "YO16", "DN14"],
    LocalAuthority.NORTH_LINCOLNSHIRE: ["DN15", "DN16", "DN17", "DN18", "DN20"],
    LocalAuthority.NORTH_EAST_LINCOLNSHIRE: ["DN31", "DN32", "DN33", "DN34", "DN35"],
}
SKILLS = ["learning-disability", "mental-health", "language:polish", "language:arabic"]


def synthetic_pool(size: int, rng: random.Random, today: date = TODAY) -> list[VolunteerRecord]:
    """``size`` invented volunteers; dates relative to ``today`` (about 83% matchable)."""
    records = []
    for i in range(size):
        area = rng.choice(AREAS)
        lapsed = rng.random() < 0.1
        records.append(
            VolunteerRecord(
                volunteer_id=f"v{i:05d}",
                name=f"Synthetic volunteer {i}",
                gender=rng.choice([Gender.FEMALE, Gender.MALE, Gender.FEMALE, Gender.MALE, Gender.OTHER]),
                local_authority=area,
                postcode_district=rng.choice(DISTRICTS[area]),
                experienced=rng.random() < 0.3,
                skills=rng.sample(SKILLS, k=rng.choice([0, 0, 0, 1, 2])),
                max_circles=rng.choice([None, 1, 2, 3]),
                availability=rng.sample(["mon-eve", "tue-eve", "wed-eve", "sat-am", "sun-pm"], k=2),
                dbs_checked_on=today - timedelta(days=1_790 if lapsed else rng.randint(330, 690)),
                trained_on=None if rng.random() < 0.05 else today - timedelta(days=540),
                last_supervised_on=today - timedelta(days=rng.randint(4, 23)),
                withdrawn_on=today - timedelta(days=327) if rng.random() < 0.03 else None,
                registered_on=today - timedelta(days=690),
            )
        )
    return records


def requests(count: int, rng: random.Random) -> list[Request]:
    made = []
    for i in range(count):
        area = rng.choice(AREAS)
        needs = NeedsProfile(
            learning_disability=rng.random() < 0.2,
            mental_health=rng.random() < 0.2,
            interpreter_language="Polish" if rng.random() < 0.05 else None,
        )
        prof = profile().model_copy(
            update={
                "local_authority": area,
                "postcode_district": rng.choice(DISTRICTS[area]),
                "exclusion_zones": rng.sample(DISTRICTS[area], k=2),
                "needs": needs,
            }
        )
        made.append(Request(f"r{i}", prof))
    return made


def timed(made: list[Request], pool: Pool, load: Load) -> dict[str, Any]:
    """One ``propose()`` per request: how many proposed, and the median, p99 and slowest (ms)."""
    times = []
    proposed = 0
    for request in made:
        started = time.perf_counter()
        result = propose(request, pool, load, POLICY, TODAY)
        times.append((time.perf_counter() - started) * 1000)
        proposed += hasattr(result, "volunteers")
    times.sort()
    return {
        "matches": len(made),
        "proposed": proposed,
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
    }


def measure(size: int, rounds: int = 300, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    pool = Pool(POLICY, synthetic_pool(size, rng))
    ids = list(pool.volunteers)
    load = Load(holds={v: "p" for v in rng.sample(ids, k=size // 5)}, circles={})
    pool.bucket(LocalAuthority.HULL, Gender.MALE)  # build the index once, as a running matcher has it
    return {"pool": size, **timed(requests(rounds, rng), pool, load)}


def busy_load(pool: Pool, rng: random.Random, today: date = TODAY) -> Load:
    """Two fifths of the pool held by open proposals (the best-ranked ready volunteers: experienced first,
    then by id, as every bucket ranks them; on main's code too, hence no ``pool.rank``), a sixth of the pool
    at their circle limit and as many again in one circle, formed over two years (some no longer count)."""
    ready = sorted(
        (v for v in pool if not v.readiness_problems(today)),
        key=lambda v: (not v.experienced, v.volunteer_id),
    )
    held = ready[: len(pool) * 2 // 5]
    holds = {v.volunteer_id: f"p{i // POLICY.circle_size}" for i, v in enumerate(held)}
    rest = [v for v in pool if v.volunteer_id not in holds]
    circles: dict[str, list[tuple[str, date]]] = {}
    for i, volunteer in enumerate(rng.sample(rest, k=len(pool) // 3)):
        count = volunteer.max_circles if i % 2 == 0 else 1
        circles[volunteer.volunteer_id] = [
            (f"r{i}-{n}", today - timedelta(days=rng.randint(10, 700))) for n in range(count)
        ]
    return Load(circles=circles, holds=holds)


def measure_loaded(size: int, rounds: int = 200, seed: int = 7) -> dict[str, Any]:
    """One match against ``size`` volunteers under a busy load (``busy_load``); the load is left as it is
    between matches, as a running worker's is between two proposals."""
    rng = random.Random(seed)
    pool = Pool(POLICY, synthetic_pool(size, rng))
    load = busy_load(pool, rng)
    pool.bucket(LocalAuthority.HULL, Gender.MALE)  # the indexes built once, as a running worker has them
    pool.skilled(LocalAuthority.HULL, SKILLS[0])
    propose(requests(1, random.Random(seed))[0], pool, load, POLICY, TODAY)
    return {
        "pool": size,
        "held": len(load.holds),
        "in_circles": len(load.circles),
        **timed(requests(rounds, rng), pool, load),
    }


def run_loaded() -> list[dict[str, Any]]:
    """One run under a busy load: pools of 10,000 and 30,000 volunteers."""
    return [measure_loaded(size) for size in (10_000, 30_000)]


def run() -> list[dict[str, Any]]:
    """One run: pools of 100, 1,000 and 10,000 volunteers."""
    return [measure(size) for size in (100, 1_000, 10_000)]


def main(argv: list[str] | None = None) -> int:
    loaded = "--loaded" in (sys.argv[1:] if argv is None else argv)
    for result in run_loaded() if loaded else run():
        busy = f", {result['held']} held, {result['in_circles']} in circles" if loaded else ""
        print(
            f"pool {result['pool']:>6}{busy}: median {result['median_ms']:.3f} ms, "
            f"p99 {result['p99_ms']:.3f} ms ({result['proposed']}/{result['matches']} proposed)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
