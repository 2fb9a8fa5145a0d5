"""The coordinator's daily digest: counts of where referrals stand, sent once each working day.

Figures only (no list of referrals): the page and the CLI give the detail; the digest says where to look.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from schemas.common import ReferralStatus
from services.referral_progress.progress import SETTLED, ReferralProgress
from services.referral_progress.service_levels import ServiceLevels, overdue
from services.referral_progress.workdays import is_working_day, local, scheme_today

OPEN_STATUSES = [status for status in ReferralStatus if status not in SETTLED]


@dataclass(frozen=True)
class DigestSchedule:
    at: time = time(8, 0)
    """Local time (Europe/London) after which the day's digest goes out."""
    working_days_only: bool = True


def digest_due(now: datetime, schedule: DigestSchedule, levels: ServiceLevels) -> date | None:
    """The day whose digest is due at ``now``, if any (the delivery log keeps it to one per day)."""
    today = scheme_today(now)
    if schedule.working_days_only and not is_working_day(today, levels.holidays):
        return None
    return today if local(now).time() >= schedule.at else None


def figures(progress: Iterable[ReferralProgress], now: datetime, levels: ServiceLevels) -> dict[str, int]:
    """Counts for the digest: open referrals by status, new in the last day, overdue, circles this year."""
    counts = {f"open_{status.value}": 0 for status in OPEN_STATUSES}
    counts |= {"open_total": 0, "received_last_day": 0, "overdue": 0, "circles_formed_this_year": 0}
    since = now - timedelta(days=1)
    year = scheme_today(now).year
    for item in progress:
        if item.submitted_at is not None and item.submitted_at >= since:
            counts["received_last_day"] += 1
        if item.circle_formed_at is not None and local(item.circle_formed_at).year == year:
            counts["circles_formed_this_year"] += 1
        if item.status in SETTLED:
            continue
        counts[f"open_{item.status.value}"] += 1
        counts["open_total"] += 1
        if overdue(item, now, levels):
            counts["overdue"] += 1
    return counts
