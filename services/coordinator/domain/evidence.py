"""The compliance pack: what an auditor of practice asks for, for a period, from the same history as the
return. CSV files and a one-page summary; ids and dates only (volunteer ids, referral ids, circle ids)."""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from schemas.events.referrals import ReferralAssessed
from services.coordinator.domain.report import Period
from services.coordinator.domain.scheme_return import (
    CircleLife,
    SchemeHistory,
    SchemeReturn,
    circle_lives,
    scheme_return,
    standing,
)
from services.coordinator.domain.targets import SchemeTargets
from services.referral_progress.workdays import local


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _when(moment: datetime | None) -> str:
    return local(moment).isoformat(timespec="minutes") if moment else ""


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _yes(value: bool) -> str:
    return "yes" if value else "no"


@dataclass(frozen=True)
class Table:
    name: str
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()


def volunteers_table(history: SchemeHistory, period: Period, targets: SchemeTargets) -> Table:
    rows = []
    for view in sorted(history.volunteers, key=lambda v: v.volunteer_id):
        s = standing(view, period.end, targets)
        if view.registered_on is not None and view.registered_on > period.end:
            continue
        rows.append(
            (
                s.volunteer_id,
                _yes(s.active),
                _day(view.registered_on),
                _day(view.withdrawn_on),
                _day(s.dbs_checked_on),
                _day(s.dbs_expires_on),
                _yes(s.dbs_in_date),
                str(s.days_past_dbs),
                _day(s.trained_on),
                _day(s.last_supervised_on),
                _day(s.supervision_due_on),
                _yes(s.supervised_in_date),
                str(s.days_past_supervision),
            )
        )
    return Table(
        "volunteers.csv",
        (
            "volunteer_id",
            "active",
            "registered_on",
            "withdrawn_on",
            "dbs_checked_on",
            "dbs_expires_on",
            "dbs_in_date",
            "days_dbs_lapsed",
            "trained_on",
            "last_supervised_on",
            "supervision_due_on",
            "supervised_in_date",
            "days_supervision_overdue",
        ),
        rows,
    )


def minutes_table(lives: Iterable[CircleLife], period: Period) -> Table:
    rows = [
        (
            meeting.meeting_id,
            life.circle_id,
            life.referral_id,
            _day(meeting.held_on),
            _when(meeting.minutes_due_at),
            meeting.minutes or "not_in",
            _when(meeting.minutes_at),
        )
        for life in lives
        for meeting in sorted(life.meetings.values(), key=lambda m: (m.held_on, m.meeting_id))
        if period.start <= meeting.held_on <= period.end
    ]
    return Table(
        "minutes.csv",
        ("meeting_id", "circle_id", "referral_id", "held_on", "minutes_due_at", "minutes", "minutes_in_at"),
        rows,
    )


def review_rows(life: CircleLife, period: Period, every_months: int) -> list[tuple[str, ...]]:
    """Each review that fell due within the period (and before the circle ended), and whether one was held
    by then: a review held by its due day is on time, and the next is due ``every_months`` after it."""
    reviews = sorted(life.reviews)
    last_day = min(period.end, life.ended_on or period.end)
    anchor = life.formed_on
    rows: list[tuple[str, ...]] = []
    while True:
        due = add_months(anchor, every_months)
        if due > last_day:
            break
        held = next((r for r in reviews if anchor < r), None)
        on_time = held is not None and held <= due
        if due >= period.start:
            rows.append((life.circle_id, life.referral_id, _day(due), _day(held), _yes(on_time)))
        anchor = held if held is not None and held <= last_day else due
    return rows


def reviews_table(lives: Iterable[CircleLife], period: Period, every_months: int) -> Table:
    rows = [row for life in lives for row in review_rows(life, period, every_months)]
    return Table("reviews.csv", ("circle_id", "referral_id", "due_on", "held_on", "held_when_due"), rows)


def concerns_table(lives: Iterable[CircleLife], period: Period, targets: SchemeTargets) -> Table:
    target = timedelta(hours=targets.concern_acknowledgement_hours)
    rows: list[tuple[str, ...]] = []
    for life in lives:
        for concern in sorted(life.concerns.values(), key=lambda c: c.raised_at):
            if not period.start <= local(concern.raised_at).date() <= period.end:
                continue
            waited = concern.acknowledged_at - concern.raised_at if concern.acknowledged_at else None
            rows.append(
                (
                    concern.concern_id,
                    life.circle_id,
                    life.referral_id,
                    concern.level,
                    _when(concern.raised_at),
                    _when(concern.acknowledged_at),
                    f"{waited.total_seconds() / 3600:.1f}" if waited is not None else "",
                    _yes(waited is not None and waited <= target),
                    _when(concern.escalated_at),
                )
            )
    return Table(
        "concerns.csv",
        (
            "concern_id",
            "circle_id",
            "referral_id",
            "level",
            "raised_at",
            "acknowledged_at",
            "hours_to_acknowledge",
            "acknowledged_within_target",
            "escalated_at",
        ),
        rows,
    )


def decisions_table(history: SchemeHistory, period: Period) -> Table:
    rows: list[tuple[str, ...]] = []
    for event in history.events:
        if isinstance(event, ReferralAssessed):
            decided_at = event.decision.decided_at
            if period.start <= local(decided_at).date() <= period.end:
                rows.append(
                    (
                        _when(decided_at),
                        "eligibility",
                        str(event.referral_id),
                        "",
                        event.decision.outcome.value,
                        f"policy:{event.decision.policy_version}",
                    )
                )
    for proposal in history.proposals:
        if proposal.decided_at and period.start <= local(proposal.decided_at).date() <= period.end:
            rows.append(
                (
                    _when(proposal.decided_at),
                    "match",
                    str(proposal.referral_id),
                    str(proposal.proposal_id),
                    proposal.status,
                    f"coordinator:{proposal.decided_by}" if proposal.decided_by else "",
                )
            )
    rows.sort()
    return Table(
        "decisions.csv", ("decided_at", "kind", "referral_id", "proposal_id", "outcome", "decided_by"), rows
    )


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole}" + (f" ({100 * part / whole:.0f}%)" if whole else "")


def summary(figures: SchemeReturn, tables: Sequence[Table], period: Period) -> str:
    by_name = {table.name: table for table in tables}
    vols = by_name["volunteers.csv"].rows
    active = [row for row in vols if row[1] == "yes"]
    minutes = by_name["minutes.csv"].rows
    reviews = by_name["reviews.csv"].rows
    concerns = by_name["concerns.csv"].rows
    decisions = by_name["decisions.csv"].rows
    standards = [
        (
            "Volunteers with an enhanced DBS check in date",
            _share(sum(r[6] == "yes" for r in active), len(active)),
            "volunteers.csv",
        ),
        ("Volunteers trained", _share(sum(bool(r[8]) for r in active), len(active)), "volunteers.csv"),
        (
            "Volunteers supervised in date",
            _share(sum(r[11] == "yes" for r in active), len(active)),
            "volunteers.csv",
        ),
        ("Minutes in on time", _share(sum(r[5] == "on_time" for r in minutes), len(minutes)), "minutes.csv"),
        ("Reviews held when due", _share(sum(r[4] == "yes" for r in reviews), len(reviews)), "reviews.csv"),
        (
            "Concerns acknowledged within target",
            _share(sum(r[7] == "yes" for r in concerns), len(concerns)),
            "concerns.csv",
        ),
        (
            "Decisions recorded with who made them",
            _share(sum(bool(r[5]) for r in decisions), len(decisions)),
            "decisions.csv",
        ),
    ]
    lines = [
        f"# Compliance pack, {period.start} to {period.end}",
        "",
        f"Targets version {figures.targets_version}. Ids and dates only; the CSV files beside this one hold "
        "every row counted here.",
        "",
        "| standard | result | file |",
        "| --- | --- | --- |",
        *(f"| {what} | {result} | {name} |" for what, result, name in standards),
        "",
        f"Circles operating: {figures.circles.operating} (target {figures.circles.target_pro_rata} pro rata, "
        f"{'on track' if figures.circles.on_track else 'not on track'}). MAPPA panels attended: "
        f"{figures.mappa_panels.attended} of {figures.mappa_panels.requested}. Audits of practice: "
        f"{figures.audits.held} ({figures.audits.with_actions} with actions).",
        "",
    ]
    return "\n".join(lines)


def evidence_pack(history: SchemeHistory, period: Period, targets: SchemeTargets) -> dict[str, str]:
    """File name → content: the CSV files and ``summary.md``."""
    lives = [
        life
        for life in sorted(circle_lives(history.events).values(), key=lambda c: (c.formed_on, c.referral_id))
        if life.active_on_any_day_of(period)
    ]
    tables = [
        volunteers_table(history, period, targets),
        minutes_table(lives, period),
        reviews_table(lives, period, targets.review_every_months),
        concerns_table(lives, period, targets),
        decisions_table(history, period),
    ]
    files = {table.name: table.csv() for table in tables}
    files["summary.md"] = summary(scheme_return(history, period, targets), tables, period)
    return files
