"""Working days in the scheme's time zone: weekends and bank holidays do not count.

Service levels are promised in working days ("acknowledged within one working day"), so the clock must
skip the days nobody is at work. Bank holidays are England and Wales's, for any year, from the maintained
``holidays`` package (substitute days and one-off holidays included), plus any the scheme adds.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as calendars

SCHEME_TIMEZONE = ZoneInfo("Europe/London")


def is_working_day(day: date, holidays: Container[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def local(moment: datetime) -> datetime:
    return moment.astimezone(SCHEME_TIMEZONE)


def scheme_today(now: datetime) -> date:
    return local(now).date()


def add_working_days(start: datetime, days: int, holidays: Container[date]) -> datetime:
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


def working_days_between(start: datetime, end: datetime, holidays: Container[date]) -> int:
    """Working days after the day of ``start`` up to and including the day of ``end``."""
    first, last = local(start).date(), local(end).date()
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        if is_working_day(day, holidays):
            count += 1
        day += timedelta(days=1)
    return count


class BankHolidays(Container[date]):
    """England and Wales bank holidays (the package fills in each year when first asked), and ``extra``
    dates: a holiday announced after the installed package was released, or a closure day of the scheme."""

    def __init__(self, extra: Iterable[date] = ()) -> None:
        self.extra = frozenset(extra)
        self._england_and_wales = calendars.country_holidays("GB", subdiv="ENG")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day in self.extra or day in self._england_and_wales)
