"""The commissioner report: for a period, the figures the PCC and Probation review the contract with.

Referrals received by agency and where they stand; how long decisions took (working days from submission
to the first assessment); circles formed in the period and in the target year against the target;
volunteers active, vetted and supervised in date at the end of the period; messages that could not be
delivered. Rendered as a page, a CSV and an SVG chart.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import AwareDatetime, model_validator

from schemas.common import Contract, ReferralStatus
from schemas.coordinator_api import VolunteerView
from services.coordinator.domain.facts import DeadLetterFact
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.workdays import local, working_days_between

OUTCOMES = ("eligible", "ineligible", "needs_information", "deferred", "withdrawn", "undecided")
AS_ELIGIBLE = {
    ReferralStatus.ELIGIBLE,
    ReferralStatus.PROPOSED,
    ReferralStatus.AWAITING_VOLUNTEERS,
    ReferralStatus.CIRCLE_FORMED,
}


class Period(Contract):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")
        return self

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= local(moment).date() <= self.end


class AgencyFigures(Contract):
    agency_id: str
    received: int
    eligible: int
    ineligible: int
    needs_information: int
    deferred: int
    withdrawn: int
    undecided: int


class DecisionTimes(Contract):
    decided: int
    median_working_days: float | None
    slowest_working_days: int | None


class VolunteerFigures(Contract):
    registered: int
    active: int
    vetted_in_date: int
    supervised_in_date: int


class Report(Contract):
    period: Period
    generated_at: AwareDatetime
    referrals_received: int
    by_agency: list[AgencyFigures]
    decision_times: DecisionTimes
    circles_formed: int
    target_year: str
    circles_formed_in_target_year: int
    yearly_target: int
    volunteers: VolunteerFigures
    messages_dead_lettered: int
    dead_lettered_by_channel: dict[str, int]


def outcome_of(status: ReferralStatus) -> str:
    if status in AS_ELIGIBLE:
        return "eligible"
    if status is ReferralStatus.RECEIVED:
        return "undecided"
    return status.value


def target_year_of(day: date, start_month: int) -> tuple[date, date, str]:
    first_year = day.year if day.month >= start_month else day.year - 1
    start = date(first_year, start_month, 1)
    end = date(first_year + 1, start_month, 1) if start_month > 1 else date(first_year, 12, 31)
    label = f"{first_year}/{str(first_year + 1)[-2:]}" if start_month > 1 else str(first_year)
    return start, end, label


def build_report(
    progress: Iterable[ReferralProgress],
    volunteers: list[VolunteerView],
    dead_letters: Iterable[DeadLetterFact],
    period: Period,
    *,
    yearly_target: int,
    target_year_starts_month: int,
    holidays: Container[date],
    now: datetime,
) -> Report:
    referrals = list(progress)
    received = [r for r in referrals if r.submitted_at and r.submitted_at in period]
    by_agency: dict[str, Counter[str]] = {}
    for referral in received:
        by_agency.setdefault(referral.agency_id, Counter())[outcome_of(referral.status)] += 1
    days = [
        working_days_between(r.submitted_at, r.acknowledged_at, holidays)
        for r in received
        if r.submitted_at and r.acknowledged_at
    ]
    year_start, year_end, label = target_year_of(period.end, target_year_starts_month)
    year = Period(
        start=year_start,
        end=max(year_start, year_end.replace(day=1) if target_year_starts_month == 1 else year_end),
    )
    formed = [r.circle_formed_at for r in referrals if r.circle_formed_at]
    in_year = [moment for moment in formed if year_start <= local(moment).date() < year_end]
    dead = [d for d in dead_letters if d.at in period]
    active = [v for v in volunteers if not v.withdrawn]
    del year
    return Report(
        period=period,
        generated_at=now,
        referrals_received=len(received),
        by_agency=[
            AgencyFigures(agency_id=agency, received=sum(counts.values()), **{o: counts[o] for o in OUTCOMES})
            for agency, counts in sorted(by_agency.items())
        ],
        decision_times=DecisionTimes(
            decided=len(days),
            median_working_days=statistics.median(days) if days else None,
            slowest_working_days=max(days) if days else None,
        ),
        circles_formed=sum(1 for moment in formed if moment in period),
        target_year=label,
        circles_formed_in_target_year=len(in_year),
        yearly_target=yearly_target,
        volunteers=VolunteerFigures(
            registered=len(volunteers),
            active=len(active),
            vetted_in_date=sum(1 for v in active if v.dbs_expires_on and v.dbs_expires_on > period.end),
            supervised_in_date=sum(
                1 for v in active if v.supervision_due_on and v.supervision_due_on >= period.end
            ),
        ),
        messages_dead_lettered=len(dead),
        dead_lettered_by_channel=dict(sorted(Counter(d.channel for d in dead).items())),
    )


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "item", "value"])
    writer.writerow(["period", "start", report.period.start.isoformat()])
    writer.writerow(["period", "end", report.period.end.isoformat()])
    writer.writerow(["referrals", "received", report.referrals_received])
    for agency in report.by_agency:
        for field in ("received", *OUTCOMES):
            writer.writerow([f"agency:{agency.agency_id}", field, getattr(agency, field)])
    times = report.decision_times
    writer.writerow(["decisions", "decided", times.decided])
    writer.writerow(
        [
            "decisions",
            "median_working_days",
            "" if times.median_working_days is None else times.median_working_days,
        ]
    )
    writer.writerow(
        [
            "decisions",
            "slowest_working_days",
            "" if times.slowest_working_days is None else times.slowest_working_days,
        ]
    )
    writer.writerow(["circles", "formed_in_period", report.circles_formed])
    writer.writerow(
        ["circles", f"formed_in_target_year_{report.target_year}", report.circles_formed_in_target_year]
    )
    writer.writerow(["circles", "yearly_target", report.yearly_target])
    for field, value in report.volunteers.model_dump().items():
        writer.writerow(["volunteers", field, value])
    writer.writerow(["messages", "dead_lettered", report.messages_dead_lettered])
    for channel, count in report.dead_lettered_by_channel.items():
        writer.writerow(["messages", f"dead_lettered_{channel}", count])
    return out.getvalue()


COLOURS = {
    "eligible": "#00703c",
    "ineligible": "#d4351c",
    "needs_information": "#f47738",
    "deferred": "#1d70b8",
    "withdrawn": "#505a5f",
    "undecided": "#b1b4b6",
}


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    segments: list[tuple[float, float, str, str]]  # x, width, colour, what it counts
    total: int


@dataclass(frozen=True)
class Chart:
    """What the SVG template draws: stacked bars per agency, and circles against the target."""

    width: int
    height: int
    left: int
    bar: int
    bars: list[Bar]
    target_y: int
    target_width: float
    formed_width: float
    legend_y: int
    summary: str


def chart(
    report: Report, width: int = 760, bar: int = 22, gap: int = 10, left: int = 250, top: int = 60
) -> Chart:
    rows = report.by_agency
    biggest = max(
        [a.received for a in rows] + [report.yearly_target, report.circles_formed_in_target_year, 1]
    )
    scale = (width - left - 60) / biggest
    bars = []
    y = top
    for agency in rows:
        x, segments = float(left), []
        for outcome in OUTCOMES:
            count = getattr(agency, outcome)
            if count:
                segments.append((x, count * scale, COLOURS[outcome], f"{count} {outcome.replace('_', ' ')}"))
                x += count * scale
        bars.append(Bar(agency.agency_id, y, segments, agency.received))
        y += bar + gap
    target_y = y + bar
    summary = (
        "; ".join(f"{a.agency_id}: {a.received} received, {a.eligible} eligible" for a in rows)
        or "no referrals"
    )
    return Chart(
        width=width,
        height=target_y + bar + gap * 3 + 40,
        left=left,
        bar=bar,
        bars=bars,
        target_y=target_y,
        target_width=report.yearly_target * scale,
        formed_width=report.circles_formed_in_target_year * scale,
        legend_y=target_y + bar + gap * 3,
        summary=summary,
    )
