"""Working days in the scheme's time zone: weekends and configured bank holidays do not count.

Service levels are promised in working days ("acknowledged within one working day"), so the clock must
skip the days nobody is at work.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import yaml

SCHEME_TIMEZONE = ZoneInfo("Europe/London")


def is_working_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def local(moment: datetime) -> datetime:
    return moment.astimezone(SCHEME_TIMEZONE)


def scheme_today(now: datetime) -> date:
    return local(now).date()


def add_working_days(start: datetime, days: int, holidays: Collection[date]) -> datetime:
    """``days`` working days after ``start``, at the same local time of day.

    A start outside working days (a Saturday, a bank holiday) counts from the beginning of the next
    working day: one working day after Saturday noon is the end of Monday, not Monday noon.
    """
    moment = local(start)
    day = moment.date()
    if not is_working_day(day, holidays):
        while not is_working_day(day, holidays):
            day += timedelta(days=1)
        moment = datetime.combine(day, time(0, 0), tzinfo=SCHEME_TIMEZONE)
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day, holidays):
            remaining -= 1
    return datetime.combine(day, moment.timetz().replace(tzinfo=None), tzinfo=SCHEME_TIMEZONE)


def working_days_between(start: datetime, end: datetime, holidays: Collection[date]) -> int:
    """Working days after the day of ``start`` up to and including the day of ``end``."""
    first, last = local(start).date(), local(end).date()
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        if is_working_day(day, holidays):
            count += 1
        day += timedelta(days=1)
    return count


def default_bank_holidays() -> list[date]:
    """England and Wales bank holidays shipped with the code (``bank_holidays.yaml``)."""
    text = resources.files("services.referral_progress").joinpath("bank_holidays.yaml").read_text()
    return sorted(date.fromisoformat(str(day)) for day in yaml.safe_load(text)["england-and-wales"])
