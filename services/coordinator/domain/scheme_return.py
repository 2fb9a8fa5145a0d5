"""The commissioner's return: for any period, every figure of the contract's return, computed by plain
functions over the event history (the archived public events, the scheme's records) and the volunteer
records. Nothing here reads the clock: a return for a period is the same whichever day it is asked.

Rules (also in docs/architecture.md):

* a circle *operates* in a period when it was active on any day of it: formed on or before the last day and
  not ended before the first (a circle is active on the day it ends);
* ``on_track``: circles operating >= the yearly target pro rata, ``target_per_year`` x the period's days /
  the days of the contract year the period starts in;
* MAPPA panels, mentoring sessions, audits, meetings count by the day they were held; concerns and
  referrals by the day (Europe/London) they were raised or received;
* a referral's outcome is where it stood at the end of the period (its last decision or withdrawal by then);
* volunteers are counted as they stood at the end of the period (registered by then, not withdrawn by then;
  DBS check, training and supervision dated on or before it and in date on it);
* funding is the contract year's (the settings' values); cost per operating circle = total / operating.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.coordinator_api import ProposalView, VolunteerView
from schemas.envelope import Event
from schemas.events.circles import (
    CircleActivated,
    CircleEnded,
    CircleFact,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernRaised,
    MeetingRecorded,
    MinutesOverdue,
    MinutesSubmitted,
    ReviewRecorded,
    circle_id_of,
)
from schemas.events.coordinator import AuditRecorded, MappaPanelRecorded, MentoringSessionRecorded
from schemas.events.matching import CircleFormed
from schemas.events.referrals import ReferralAssessed, ReferralSubmitted, ReferralWithdrawn
from services.coordinator.domain.report import Period
from services.coordinator.domain.targets import PENNY, SchemeTargets
from services.referral_progress.workdays import local

OUTCOMES = ("eligible", "ineligible", "needs_information", "deferred", "withdrawn", "undecided")


class Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReturnPeriod(Figures):
    from_: date = Field(alias="from")
    to: date


class Ended(Figures):
    completed: int
    ended_early: int


class CircleFigures(Figures):
    operating: int
    formed: int
    ended: Ended
    target_per_year: int
    target_pro_rata: float
    on_track: bool


class PanelCounts(Figures):
    requested: int
    attended: int


class PanelFigures(Figures):
    requested: int
    attended: int
    by_level: dict[str, PanelCounts]


class MentoringFigures(Figures):
    service_users: int
    sessions: int
    minutes: int


class AuditFigures(Figures):
    held: int
    met: int
    with_actions: int


class MeetingFigures(Figures):
    held: int
    minutes_on_time: int
    minutes_late: int


class ConcernFigures(Figures):
    raised: int
    urgent: int
    acknowledged_within_target: int


class VolunteerFigures(Figures):
    active: int
    dbs_in_date: int
    trained: int
    supervised_in_date: int


class ReferralFigures(Figures):
    received: int
    by_agency: dict[str, int]
    by_outcome: dict[str, int]


class FundingFigures(Figures):
    total: float
    opcc: float
    probation: float
    cost_per_operating_circle: float | None


class SchemeReturn(Figures):
    period: ReturnPeriod
    targets_version: str
    circles: CircleFigures
    mappa_panels: PanelFigures
    mentoring: MentoringFigures
    audits: AuditFigures
    meetings: MeetingFigures
    concerns: ConcernFigures
    volunteers: VolunteerFigures
    referrals: ReferralFigures
    funding: FundingFigures

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# -- circles as the history tells them ---------------------------------------------------------------------


@dataclass
class Meeting:
    meeting_id: str
    held_on: date
    minutes_due_at: datetime | None = None
    minutes: str | None = None
    """None (not in yet), ``on_time``, ``late``; ``overdue`` once the service said so and none came."""
    minutes_at: datetime | None = None


@dataclass
class Concern:
    concern_id: str
    level: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    escalated_at: datetime | None = None


@dataclass
class CircleLife:
    referral_id: str
    circle_id: str
    formed_on: date
    agency_id: str | None = None
    ended_on: date | None = None
    outcome: str | None = None
    volunteer_ids: list[str] = field(default_factory=list)
    meetings: dict[str, Meeting] = field(default_factory=dict)
    concerns: dict[str, Concern] = field(default_factory=dict)
    reviews: list[date] = field(default_factory=list)

    def active_on_any_day_of(self, period: Period) -> bool:
        return self.formed_on <= period.end and (self.ended_on is None or self.ended_on >= period.start)


def circle_lives(events: Iterable[Event]) -> dict[str, CircleLife]:
    """Each referral's circle, folded from the history (in any order: each fact sets its own field).

    A circle is known from its formation (matching's ``CircleFormed``) or its activation (the circles
    service's ``CircleActivated``, whose ``formed_on`` wins); the circles service's facts fill in meetings,
    minutes, concerns, reviews and the end."""
    events = list(events)
    lives: dict[str, CircleLife] = {}

    def life_of(referral_id: uuid.UUID, formed_on: date, agency_id: str) -> CircleLife:
        key = str(referral_id)
        if key not in lives:
            lives[key] = CircleLife(
                referral_id=key, circle_id=circle_id_of(referral_id), formed_on=formed_on, agency_id=agency_id
            )
        return lives[key]

    for event in events:
        if isinstance(event, CircleFormed):
            life = life_of(event.referral_id, local(event.formed_at).date(), event.agency_id)
            life.volunteer_ids = life.volunteer_ids or list(event.volunteer_ids)
    for event in events:
        if isinstance(event, CircleActivated):
            life = life_of(event.referral_id, event.formed_on, event.agency_id)
            life.formed_on = event.formed_on
            life.volunteer_ids = list(event.volunteer_ids)
    for event in events:
        if not isinstance(event, CircleFact):
            continue
        life = lives.get(str(event.referral_id)) or life_of(
            event.referral_id, _fact_day(event), event.agency_id
        )
        _apply_fact(life, event)
    return lives


def _fact_day(event: CircleFact) -> date:
    """A fact of a circle whose formation the history does not hold: the earliest day it tells of."""
    for name in ("held_on", "ended_on"):
        value = getattr(event, name, None)
        if isinstance(value, date):
            return value
    for name in ("raised_at", "submitted_at", "extended_at", "noticed_at"):
        value = getattr(event, name, None)
        if isinstance(value, datetime):
            return local(value).date()
    return date.min


def _apply_fact(life: CircleLife, event: CircleFact) -> None:
    if isinstance(event, MeetingRecorded):
        meeting = _meeting(life, event.meeting_id, event.held_on)
        meeting.held_on = event.held_on
        meeting.minutes_due_at = event.minutes_due_at
        if event.minutes_received:
            meeting.minutes, meeting.minutes_at = "on_time", event.recorded_at
    elif isinstance(event, MinutesSubmitted):
        meeting = _meeting(life, event.meeting_id, _day(event.submitted_at))
        meeting.minutes = "on_time" if event.on_time else "late"
        meeting.minutes_at = event.submitted_at
    elif isinstance(event, MinutesOverdue):
        meeting = _meeting(life, event.meeting_id, event.held_on)
        meeting.minutes_due_at = event.minutes_due_at
        if meeting.minutes is None:
            meeting.minutes = "overdue"
    elif isinstance(event, ConcernRaised | ConcernAcknowledged | ConcernEscalated):
        key = str(event.concern_id)
        concern = life.concerns.setdefault(
            key, Concern(concern_id=key, level=event.level.value, raised_at=event.raised_at)
        )
        if isinstance(event, ConcernAcknowledged):
            concern.acknowledged_at = event.acknowledged_at
        elif isinstance(event, ConcernEscalated):
            concern.escalated_at = event.escalated_at
    elif isinstance(event, ReviewRecorded):
        if event.held_on not in life.reviews:
            life.reviews.append(event.held_on)
    elif isinstance(event, CircleEnded):
        life.ended_on, life.outcome = event.ended_on, event.outcome.value


def _meeting(life: CircleLife, meeting_id: uuid.UUID, held_on: date) -> Meeting:
    key = str(meeting_id)
    return life.meetings.setdefault(key, Meeting(meeting_id=key, held_on=held_on))


# -- the return --------------------------------------------------------------------------------------------


def _in(day: date, period: Period) -> bool:
    return period.start <= day <= period.end


def _day(moment: datetime) -> date:
    return local(moment).date()


def pro_rata(targets: SchemeTargets, period: Period) -> float:
    start, end = targets.contract_year(period.start)
    year_days = (end - start).days + 1
    days = (period.end - period.start).days + 1
    return round(targets.circles_operating_per_year * days / year_days, 2)


def _money(value: Decimal) -> float:
    return float(value.quantize(PENNY, rounding=ROUND_HALF_UP))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class VolunteerStanding:
    """One volunteer as they stood on a day: the dates and whether each standard was met."""

    volunteer_id: str
    active: bool
    dbs_checked_on: date | None
    dbs_expires_on: date | None
    dbs_in_date: bool
    trained_on: date | None
    trained: bool
    last_supervised_on: date | None
    supervision_due_on: date | None
    supervised_in_date: bool
    days_past_supervision: int
    days_past_dbs: int


def standing(volunteer: VolunteerView, on: date, targets: SchemeTargets) -> VolunteerStanding:
    registered = volunteer.registered_on is None or volunteer.registered_on <= on
    withdrawn = volunteer.withdrawn_on <= on if volunteer.withdrawn_on is not None else volunteer.withdrawn
    dbs = volunteer.dbs_checked_on if volunteer.dbs_checked_on and volunteer.dbs_checked_on <= on else None
    dbs_until = _add_years(dbs, targets.dbs_valid_years) if dbs else None
    trained = volunteer.trained_on if volunteer.trained_on and volunteer.trained_on <= on else None
    supervised = (
        volunteer.last_supervised_on
        if volunteer.last_supervised_on and volunteer.last_supervised_on <= on
        else None
    )
    since = max((d for d in (supervised, trained) if d is not None), default=None)
    due = since + timedelta(weeks=targets.supervision_interval_weeks) if since else None
    return VolunteerStanding(
        volunteer_id=volunteer.volunteer_id,
        active=registered and not withdrawn,
        dbs_checked_on=dbs,
        dbs_expires_on=dbs_until,
        dbs_in_date=dbs_until is not None and dbs_until > on,
        trained_on=trained,
        trained=trained is not None,
        last_supervised_on=supervised,
        supervision_due_on=due,
        supervised_in_date=due is not None and due >= on,
        days_past_supervision=max(0, (on - due).days) if due else 0,
        days_past_dbs=max(0, (on - dbs_until).days + 1) if dbs_until else 0,
    )


def referral_outcomes(events: Iterable[Event], period: Period) -> tuple[dict[str, str], dict[str, str]]:
    """Referrals received in the period (referral id → agency) and where each stood at its end."""
    first_submitted: dict[str, tuple[datetime, str]] = {}
    last: dict[str, tuple[datetime, str]] = {}
    for event in events:
        if isinstance(event, ReferralSubmitted):
            key = str(event.referral_id)
            seen = first_submitted.get(key)
            if seen is None or event.submitted_at < seen[0]:
                first_submitted[key] = (event.submitted_at, event.agency_id)
        elif isinstance(event, ReferralAssessed) and _day(event.decision.decided_at) <= period.end:
            _latest(last, str(event.referral_id), event.decision.decided_at, event.decision.outcome.value)
        elif isinstance(event, ReferralWithdrawn) and _day(event.withdrawn_at) <= period.end:
            _latest(last, str(event.referral_id), event.withdrawn_at, "withdrawn")
    received = {key: agency for key, (at, agency) in first_submitted.items() if _in(_day(at), period)}
    return received, {key: last[key][1] if key in last else "undecided" for key in received}


def _latest(into: dict[str, tuple[datetime, str]], key: str, at: datetime, value: str) -> None:
    current = into.get(key)
    if current is None or at >= current[0]:
        into[key] = (at, value)


@dataclass(frozen=True)
class SchemeHistory:
    """What the return and the compliance pack are computed from."""

    events: Sequence[Event]
    """The archived public events (referrals, matching, circles) and the scheme's records, in any order."""
    volunteers: Sequence[VolunteerView]
    proposals: Sequence[ProposalView] = ()


def scheme_return(history: SchemeHistory, period: Period, targets: SchemeTargets) -> SchemeReturn:
    events = list(history.events)
    lives = circle_lives(events)
    operating = [life for life in lives.values() if life.active_on_any_day_of(period)]
    ended = Counter(
        life.outcome for life in lives.values() if life.ended_on is not None and _in(life.ended_on, period)
    )
    expected = pro_rata(targets, period)

    panels = [e for e in events if isinstance(e, MappaPanelRecorded) and _in(e.held_on, period)]
    sessions = [e for e in events if isinstance(e, MentoringSessionRecorded) and _in(e.held_on, period)]
    audits = [e for e in events if isinstance(e, AuditRecorded) and _in(e.held_on, period)]

    meetings = [m for life in lives.values() for m in life.meetings.values() if _in(m.held_on, period)]
    concerns = [
        c for life in lives.values() for c in life.concerns.values() if _in(_day(c.raised_at), period)
    ]
    in_target = timedelta(hours=targets.concern_acknowledgement_hours)

    standings = [standing(v, period.end, targets) for v in history.volunteers]
    active = [s for s in standings if s.active]

    received, outcomes = referral_outcomes(events, period)
    opcc, probation = targets.shares()

    return SchemeReturn(
        period=ReturnPeriod(from_=period.start, to=period.end),
        targets_version=targets.version,
        circles=CircleFigures(
            operating=len(operating),
            formed=sum(1 for life in lives.values() if _in(life.formed_on, period)),
            ended=Ended(completed=ended["completed"], ended_early=ended["ended_early"]),
            target_per_year=targets.circles_operating_per_year,
            target_pro_rata=expected,
            on_track=len(operating) >= expected,
        ),
        mappa_panels=PanelFigures(
            requested=len(panels),
            attended=sum(1 for p in panels if p.attended),
            by_level={
                str(level): PanelCounts(
                    requested=sum(1 for p in panels if p.level == level),
                    attended=sum(1 for p in panels if p.level == level and p.attended),
                )
                for level in (2, 3)
            },
        ),
        mentoring=MentoringFigures(
            service_users=len({s.referral_id for s in sessions}),
            sessions=len(sessions),
            minutes=sum(s.minutes for s in sessions),
        ),
        audits=AuditFigures(
            held=len(audits),
            met=sum(1 for a in audits if a.result == "met"),
            with_actions=sum(1 for a in audits if a.result == "actions"),
        ),
        meetings=MeetingFigures(
            held=len(meetings),
            minutes_on_time=sum(1 for m in meetings if m.minutes == "on_time"),
            minutes_late=sum(1 for m in meetings if m.minutes in ("late", "overdue")),
        ),
        concerns=ConcernFigures(
            raised=len(concerns),
            urgent=sum(1 for c in concerns if c.level == "urgent"),
            acknowledged_within_target=sum(
                1
                for c in concerns
                if c.acknowledged_at is not None and c.acknowledged_at - c.raised_at <= in_target
            ),
        ),
        volunteers=VolunteerFigures(
            active=len(active),
            dbs_in_date=sum(1 for s in active if s.dbs_in_date),
            trained=sum(1 for s in active if s.trained),
            supervised_in_date=sum(1 for s in active if s.supervised_in_date),
        ),
        referrals=ReferralFigures(
            received=len(received),
            by_agency=dict(sorted(Counter(received.values()).items())),
            by_outcome={outcome: sum(1 for o in outcomes.values() if o == outcome) for outcome in OUTCOMES},
        ),
        funding=FundingFigures(
            total=_money(targets.contract_value),
            opcc=_money(opcc),
            probation=_money(probation),
            cost_per_operating_circle=(
                _money(targets.contract_value / len(operating)) if operating else None
            ),
        ),
    )


def _leaves(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, str(key)))
    else:
        yield path, value


def return_rows(figures: SchemeReturn) -> list[tuple[str, str, str]]:
    """One row per figure: section, figure (dotted within the section), value."""
    rows = []
    for path, value in _leaves(figures.as_json(), ()):
        shown = "" if value is None else ("true" if value is True else "false" if value is False else value)
        rows.append((path[0], ".".join(path[1:]), str(shown)))
    return rows


def return_csv(figures: SchemeReturn) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "figure", "value"])
    writer.writerows(return_rows(figures))
    return out.getvalue()


@dataclass(frozen=True)
class ReturnBar:
    label: str
    value: float
    of: float | None
    """The figure it is measured against (drawn as an outline), if any."""
    y: int
    width: float
    of_width: float | None
    text: str


@dataclass(frozen=True)
class ReturnChart:
    """What the return's SVG template draws: one bar per measure against what it is measured against."""

    width: int
    height: int
    left: int
    bar: int
    bars: list[ReturnBar]
    summary: str


def return_chart(
    figures: SchemeReturn, width: int = 760, bar: int = 22, gap: int = 12, left: int = 300, top: int = 50
) -> ReturnChart:
    c, p, m, k, v = (
        figures.circles,
        figures.mappa_panels,
        figures.meetings,
        figures.concerns,
        figures.volunteers,
    )
    measures: list[tuple[str, float, float | None, str]] = [
        (
            "Circles operating",
            c.operating,
            c.target_pro_rata,
            f"{c.operating} of {c.target_pro_rata:g} ({'on track' if c.on_track else 'not on track'})",
        ),
        ("MAPPA panels attended", p.attended, p.requested, f"{p.attended} of {p.requested}"),
        ("Mentoring sessions", figures.mentoring.sessions, None, str(figures.mentoring.sessions)),
        (
            "Audits met",
            figures.audits.met,
            figures.audits.held,
            f"{figures.audits.met} of {figures.audits.held}",
        ),
        ("Minutes on time", m.minutes_on_time, m.held, f"{m.minutes_on_time} of {m.held} meetings"),
        (
            "Concerns acknowledged in time",
            k.acknowledged_within_target,
            k.raised,
            f"{k.acknowledged_within_target} of {k.raised}",
        ),
        ("Volunteers DBS in date", v.dbs_in_date, v.active, f"{v.dbs_in_date} of {v.active}"),
        (
            "Volunteers supervised in date",
            v.supervised_in_date,
            v.active,
            f"{v.supervised_in_date} of {v.active}",
        ),
    ]
    biggest = max([1.0, *(max(value, of or 0) for _, value, of, _ in measures)])
    scale = (width - left - 170) / biggest
    bars = [
        ReturnBar(
            label=label,
            value=value,
            of=of,
            y=top + index * (bar + gap),
            width=value * scale,
            of_width=None if of is None else of * scale,
            text=text,
        )
        for index, (label, value, of, text) in enumerate(measures)
    ]
    return ReturnChart(
        width=width,
        height=top + len(bars) * (bar + gap) + 20,
        left=left,
        bar=bar,
        bars=bars,
        summary="; ".join(f"{b.label}: {b.text}" for b in bars),
    )
