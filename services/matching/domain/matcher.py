"""The matcher: propose a circle of volunteers for an eligible referral, with the reasons.

Every hard rule holds for every proposed volunteer (vetting, training, supervision, circle limit, not held
by another open proposal, not rejected for this referral by the coordinator, no declared conflict, not
living in an exclusion zone) and the circle has ``circle_size`` members. The soft rules are scored: same or
neighbouring local authority, experience, skills the referral needs, shared availability, and for the
circle both genders and at least one experienced volunteer. A valid circle exists exactly when enough
volunteers pass the hard rules, and then one is found.

Speed: the pool is walked by area (the core member's, then neighbours, then the rest) and by gender, best
first, until enough candidates are in hand, so a match reads a few dozen volunteers, not the whole pool.
Once the passed-over volunteers to show are found, only the free ones (``Load.vacancies``: ready, not held,
under their limit) are walked: the busy ones ranked ahead fail a hard rule whose reasons are not shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from schemas.common import Gender, LocalAuthority, Reason
from schemas.events.matching import ChosenVolunteer, PassedOver, ProposalFlag
from schemas.events.referrals import ReferralProfile
from services.matching.domain.policy import MatchingPolicy
from services.matching.domain.pool import Load, Pool, Volunteer, capacity_problems, ranked_after

SHORTLIST_PER_GENDER = 12
"""Eligible candidates to gather per gender before choosing (plus every one with a needed skill)."""
PASSED_OVER_SHOWN = 5


@dataclass(frozen=True)
class Request:
    """What the matcher knows of a referral."""

    referral_id: str
    profile: ReferralProfile
    excluded: frozenset[str] = frozenset()  # rejected by the coordinator for this referral


@dataclass(frozen=True)
class Proposal:
    volunteers: list[ChosenVolunteer]
    passed_over: list[PassedOver]
    flags: list[ProposalFlag]
    score: float


@dataclass(frozen=True)
class NoCircle:
    reasons: list[Reason]


@dataclass
class _Candidate:
    volunteer: Volunteer
    score: float
    reasons: list[Reason] = field(default_factory=list)
    needs_met: frozenset[str] = frozenset()


def needed_skills(profile: ReferralProfile) -> dict[str, str]:
    needs = profile.needs
    skills = {}
    if needs.learning_disability:
        skills["learning-disability"] = "Experience of supporting people with a learning disability."
    if needs.mental_health:
        skills["mental-health"] = "Experience of supporting people with mental health needs."
    if needs.interpreter_language:
        language = needs.interpreter_language.strip().lower()
        skills[f"language:{language}"] = f"Speaks {needs.interpreter_language}."
    return skills


def area_order(area: LocalAuthority, policy: MatchingPolicy) -> list[tuple[LocalAuthority, float, str]]:
    """Areas to search, best first, with their score and the reason code they earn."""
    neighbours = policy.neighbours.get(area, [])
    ordered = [(area, policy.scores.same_local_authority, "same_local_authority")]
    ordered += [
        (n, policy.scores.neighbouring_local_authority, "neighbouring_local_authority") for n in neighbours
    ]
    ordered += [(other, 0.0, "") for other in LocalAuthority if other != area and other not in neighbours]
    return ordered


def hard_problems(
    volunteer: Volunteer, request: Request, load: Load, policy: MatchingPolicy, today: date
) -> list[Reason]:
    problems = volunteer.readiness_problems(today)
    problems += capacity_problems(volunteer, load, today, policy)
    if volunteer.volunteer_id in load.holds:
        problems.append(
            Reason(code="held_by_open_proposal", message="Held by an open proposal for another referral.")
        )
    return problems + referral_problems(volunteer, request)


def referral_problems(volunteer: Volunteer, request: Request) -> list[Reason]:
    """The hard rules about this referral: set aside by the coordinator, a conflict, an exclusion zone."""
    profile = request.profile
    problems = []
    if volunteer.volunteer_id in request.excluded:
        problems.append(
            Reason(
                code="rejected_by_coordinator", message="The coordinator set them aside for this referral."
            )
        )
    if request.referral_id in volunteer.conflict_referrals:
        problems.append(Reason(code="declared_conflict", message="Declared a conflict with this referral."))
    zones = {profile.postcode_district, *profile.exclusion_zones}
    if volunteer.conflict_districts & zones:
        problems.append(
            Reason(code="declared_conflict", message="Declared a conflict with the core member's area.")
        )
    if volunteer.district in profile.exclusion_zones:
        problems.append(
            Reason(
                code="lives_in_exclusion_zone", message=f"Lives in {volunteer.district}, an exclusion zone."
            )
        )
    return problems


def _readiness_reasons(volunteer: Volunteer, load: Load, policy: MatchingPolicy, today: date) -> list[Reason]:
    active = len(load.active_circles(volunteer.volunteer_id, today, policy))
    supervised = (
        f"Supervised on {volunteer.supervised_on}"
        if volunteer.supervised_on
        else "Trained recently, not yet supervised"
    )
    return [
        Reason(
            code="vetted",
            message=f"Enhanced DBS check of {volunteer.dbs_checked_on}, in date until {volunteer.dbs_until}.",
        ),
        Reason(code="trained", message="Core training completed."),
        Reason(
            code="supervised", message=f"{supervised}; next supervision due by {volunteer.supervision_until}."
        ),
        Reason(code="capacity", message=f"In {active} of {volunteer.max_circles} circles."),
        Reason(code="no_conflict", message="No declared conflict; does not live in an exclusion zone."),
    ]


def _candidates(
    request: Request, pool: Pool, load: Load, policy: MatchingPolicy, today: date
) -> tuple[list[_Candidate], list[PassedOver]]:
    """Eligible candidates (enough of each gender, and of each needed skill), and the best-ranked
    volunteers that fail a hard rule, with why."""
    skills = needed_skills(request.profile)
    areas = area_order(request.profile.local_authority, policy)
    target = max(SHORTLIST_PER_GENDER, policy.circle_size)
    eligible: dict[str, _Candidate] = {}
    refused: dict[str, PassedOver] = {}
    vacancies = load.vacancies(pool, policy, today)

    def walk(buckets: Iterator[tuple[float, str, list[Volunteer], list[Volunteer]]]) -> None:
        """Each bucket's volunteers, best first, until ``target`` eligible are in hand: every volunteer while
        passed-over ones are still wanted, then only the free ones (the others fail a hard rule)."""
        found = 0
        for area_score, area_code, members, vacant in buckets:
            free = vacant
            if len(refused) < PASSED_OVER_SHOWN:
                free = []
                for volunteer in members:
                    if found >= target:
                        return
                    if volunteer.volunteer_id in eligible:
                        found += 1
                        continue
                    if volunteer.volunteer_id in refused:
                        continue
                    problems = hard_problems(volunteer, request, load, policy, today)
                    if not problems:
                        eligible[volunteer.volunteer_id] = _score(
                            volunteer, area_score, area_code, skills, policy
                        )
                        found += 1
                        continue
                    refused[volunteer.volunteer_id] = PassedOver(
                        volunteer_id=volunteer.volunteer_id, reasons=problems
                    )
                    if len(refused) == PASSED_OVER_SHOWN:
                        free = ranked_after(vacant, volunteer)
                        break
            for volunteer in free:
                if found >= target:
                    return
                if volunteer.volunteer_id in eligible:
                    found += 1
                elif not referral_problems(volunteer, request):
                    eligible[volunteer.volunteer_id] = _score(
                        volunteer, area_score, area_code, skills, policy
                    )
                    found += 1

    for gender in Gender:
        walk(
            (score, code, pool.bucket(area, gender), vacancies.bucket(area, gender))
            for area, score, code in areas
        )
    for skill in skills:
        walk(
            (score, code, pool.skilled(area, skill), vacancies.skilled(area, skill))
            for area, score, code in areas
        )
    return list(eligible.values()), list(refused.values())


def _score(
    volunteer: Volunteer, area_score: float, area_code: str, skills: dict[str, str], policy: MatchingPolicy
) -> _Candidate:
    reasons: list[Reason] = []
    score = area_score
    if area_code == "same_local_authority":
        reasons.append(
            Reason(code=area_code, message=f"Lives in {volunteer.area.value}, the core member's area.")
        )
    elif area_code:
        reasons.append(
            Reason(
                code=area_code, message=f"Lives in {volunteer.area.value}, next to the core member's area."
            )
        )
    if volunteer.experienced:
        score += policy.scores.experienced
        reasons.append(Reason(code="experienced", message="Has served in a circle before."))
    met = frozenset(volunteer.skills & skills.keys())
    for skill in sorted(met):
        score += policy.scores.relevant_skill
        reasons.append(Reason(code="relevant_skill", message=skills[skill]))
    return _Candidate(volunteer, score, reasons, met)


def _marginal(candidate: _Candidate, chosen: list[_Candidate], policy: MatchingPolicy) -> float:
    """What adding ``candidate`` adds to the circle's score, the circle-level rules included."""
    scores = policy.scores
    value = candidate.score
    genders = {c.volunteer.gender for c in chosen}
    if len(genders) == 1 and candidate.volunteer.gender not in genders:
        value += scores.both_genders
    if candidate.volunteer.experienced and not any(c.volunteer.experienced for c in chosen):
        value += scores.one_experienced
    covered = frozenset().union(*(c.needs_met for c in chosen))
    value += scores.need_met * len(candidate.needs_met - covered)
    if chosen:
        shared = set.intersection(*(set(c.volunteer.availability) for c in chosen))
        value += scores.shared_availability * len(candidate.volunteer.availability & shared)
    return value


def propose(
    request: Request, pool: Pool, load: Load, policy: MatchingPolicy, today: date
) -> Proposal | NoCircle:
    size = policy.circle_size
    candidates, refused = _candidates(request, pool, load, policy, today)
    if len(candidates) < size:
        found = len(candidates)
        return NoCircle(
            [
                Reason(
                    code="too_few_volunteers",
                    message=f"{found} volunteer(s) pass every hard rule; a circle needs {size}.",
                )
            ]
        )
    chosen: list[_Candidate] = []
    remaining = sorted(candidates, key=lambda c: (-c.score, c.volunteer.volunteer_id))
    while len(chosen) < size:
        best = max(
            remaining,
            key=lambda c: (_marginal(c, chosen, policy), c.score, _reverse(c.volunteer.volunteer_id)),
        )
        remaining.remove(best)
        chosen.append(best)

    genders = {c.volunteer.gender for c in chosen}
    experienced = any(c.volunteer.experienced for c in chosen)
    common = set.intersection(*(set(c.volunteer.availability) for c in chosen))
    score = sum(c.score for c in chosen)
    flags: list[ProposalFlag] = []
    if len(genders) > 1:
        score += policy.scores.both_genders
    else:
        flags.append(ProposalFlag.SINGLE_GENDER)
    if experienced:
        score += policy.scores.one_experienced
    else:
        flags.append(ProposalFlag.NO_EXPERIENCED_VOLUNTEER)
    score += policy.scores.shared_availability * len(common) * size
    needs = needed_skills(request.profile)
    covered = frozenset().union(*(c.needs_met for c in chosen))
    score += policy.scores.need_met * len(covered)
    circle_reasons: list[Reason] = []
    if len(genders) > 1:
        circle_reasons.append(
            Reason(code="both_genders", message="The circle has volunteers of more than one gender.")
        )
    for skill in sorted(covered):
        circle_reasons.append(Reason(code="need_met", message=f"The circle meets a need: {needs[skill]}"))
    if common:
        circle_reasons.append(
            Reason(
                code="shared_availability", message=f"The circle can all meet on {', '.join(sorted(common))}."
            )
        )

    lowest = min(c.score for c in chosen)
    passed_over = [_passed_over(c, lowest) for c in remaining[:PASSED_OVER_SHOWN]] + refused
    return Proposal(
        volunteers=[
            ChosenVolunteer(
                volunteer_id=c.volunteer.volunteer_id,
                reasons=_readiness_reasons(c.volunteer, load, policy, today) + c.reasons + circle_reasons,
            )
            for c in chosen
        ],
        passed_over=passed_over,
        flags=flags,
        score=round(score, 3),
    )


def _passed_over(candidate: _Candidate, lowest: float) -> PassedOver:
    if candidate.score < lowest:
        reason = Reason(
            code="lower_score",
            message=f"Scored {candidate.score:g} against {lowest:g} for the lowest chosen.",
        )
    else:
        reason = Reason(
            code="circle_complete",
            message=f"Scored {candidate.score:g}, as well as some chosen, but the circle was complete and "
            "balanced (gender, experience, needs, availability) without them.",
        )
    return PassedOver(volunteer_id=candidate.volunteer.volunteer_id, reasons=[reason])


def _reverse(text: str) -> tuple[int, ...]:
    """Ties go to the smaller id: max() with this key prefers it."""
    return tuple(-ord(ch) for ch in text)


def all_hard_problems(
    request: Request, pool: Pool, load: Load, policy: MatchingPolicy, today: date
) -> Iterator[tuple[Volunteer, list[Reason]]]:
    """Every volunteer with the hard rules they fail for this referral (for tests and explanations)."""
    for volunteer in pool:
        yield volunteer, hard_problems(volunteer, request, load, policy, today)
