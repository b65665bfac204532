"""England and Wales working-day arithmetic for scheme deadlines (docs/domain.md section 6.1).

A working day is Monday to Friday excluding England and Wales bank holidays, including substitute
days and one-off holidays. The trigger day is day 0. All functions take local calendar dates: turning
a UTC instant into a date in England and Wales is the caller's job.
"""

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

__all__ = [
    "calendar_days_after",
    "calendar_days_before",
    "is_working_day",
    "working_days_after",
    "working_days_between",
]

_SATURDAY = 5
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    # England and Wales share one list; "ENG" also excludes Scottish and Northern Irish days
    # (2 January, St Andrew's, St Patrick's, 12 July) that are working days here.
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_working_day(day: date) -> bool:
    _require_date(day)
    return day.weekday() < _SATURDAY and day not in _bank_holidays(day.year)


# Every event that starts or moves a deadline asks this, mostly about the same few days: a day at a time, the
# walk was a noticeable part of the pipeline's cost. A datetime is a different key, so it still raises below.
@lru_cache(maxsize=4096)
def working_days_after(start: date, n: int) -> date:
    """The date of working day ``n`` counting ``start`` as day 0 (``start`` need not be working)."""
    _require_date(start)
    _require_non_negative(n)
    day = start
    remaining = n
    while remaining:
        day += _ONE_DAY
        if is_working_day(day):
            remaining -= 1
    return day


def calendar_days_after(start: date, n: int) -> date:
    _require_date(start)
    _require_non_negative(n)
    return start + timedelta(days=n)


def calendar_days_before(day: date, n: int) -> date:
    _require_date(day)
    _require_non_negative(n)
    return day - timedelta(days=n)


def working_days_between(start: date, end: date) -> int:
    """Count working days ``d`` with ``start < d <= end``; 0 when ``end`` is not after ``start``."""
    _require_date(start)
    _require_date(end)
    count = 0
    day = start + _ONE_DAY
    while day <= end:
        if is_working_day(day):
            count += 1
        day += _ONE_DAY
    return count


def _require_date(value: date) -> None:
    # A datetime is a date subclass but never equals a holiday date, so it would silently count
    # bank holidays as working days; and its UTC-vs-local day is ambiguous anyway.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"expected a calendar date, got {type(value).__name__}")


def _require_non_negative(n: int) -> None:
    # Timers only run forwards from their trigger; a negative count is a caller bug, not a request
    # to count backwards.
    if n < 0:
        raise ValueError(f"day count must be >= 0, got {n}")
