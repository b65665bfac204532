"""England and Wales working days and the scheme's timers (docs/domain.md section 6).

Every expected date below was counted by hand from a calendar; the comments show the count so a
reader can check it without running anything.
"""

from collections.abc import Callable
from datetime import date, datetime

import pytest

from routing.calendar import (
    calendar_days_after,
    calendar_days_before,
    is_working_day,
    working_days_after,
    working_days_between,
)

REFERRAL_OVERDUE = 20  # working days after sentence
FIRST_CONTACT = 40  # working days after sentence
PERSONAL_STATEMENT = 28  # calendar days before the hearing
RECONSIDERATION = 21  # calendar days after a provisional decision


# --- is_working_day ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 12, 23), True),  # Wed
        (date(2026, 12, 19), False),  # Sat
        (date(2026, 12, 20), False),  # Sun
        (date(2026, 12, 25), False),  # Fri, Christmas Day
        (date(2026, 12, 28), False),  # Mon, Boxing Day substitute (26th is a Saturday)
        (date(2026, 12, 29), True),  # Tue, an ordinary day between Christmas and New Year
        (date(2027, 1, 1), False),  # Fri, New Year's Day
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 29), False),  # Easter Monday
        (date(2027, 5, 3), False),  # Early May bank holiday
        (date(2027, 5, 31), False),  # Spring bank holiday
        (date(2027, 8, 30), False),  # Summer bank holiday
        (date(2027, 12, 27), False),  # Mon, Christmas Day substitute (25th is a Saturday)
        (date(2027, 12, 28), False),  # Tue, Boxing Day substitute (26th is a Sunday)
        (date(2027, 12, 29), True),  # Wed
        (date(2028, 1, 3), False),  # Mon, New Year's Day substitute (1st is a Saturday)
        (date(2022, 9, 19), False),  # Mon, one-off: state funeral of Queen Elizabeth II
        (date(2023, 5, 8), False),  # Mon, one-off: coronation of King Charles III
        (date(2022, 6, 3), False),  # Fri, one-off: Platinum Jubilee
        (date(2022, 6, 2), False),  # Thu, spring bank holiday moved for the Jubilee
        (date(2022, 5, 30), True),  # Mon, last Monday of May, not a holiday in 2022
        # Holidays elsewhere in the UK are working days in England and Wales.
        (date(2026, 1, 2), True),  # Fri, 2 January (Scotland)
        (date(2026, 11, 30), True),  # Mon, St Andrew's Day (Scotland)
        (date(2027, 3, 17), True),  # Wed, St Patrick's Day (Northern Ireland)
        (date(2027, 7, 12), True),  # Mon, Battle of the Boyne (Northern Ireland)
        (date(2027, 8, 2), True),  # Mon, summer bank holiday in Scotland only
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


# --- referral (20) and first contact (40) timers ----------------------------------------------


@pytest.mark.parametrize(
    ("sentenced", "n", "due"),
    [
        # Christmas and New Year. Sentence Fri 18 Dec 2026 is day 0.
        # Mon 21 = 1, Tue 22 = 2, Wed 23 = 3, Thu 24 = 4; Fri 25 and Mon 28 are holidays;
        # Tue 29 = 5, Wed 30 = 6, Thu 31 = 7; Fri 1 Jan is a holiday; Mon 4 Jan = 8 ...
        # Fri 8 = 12, Fri 15 = 17, Mon 18 = 18, Tue 19 = 19, Wed 20 Jan = 20.
        (date(2026, 12, 18), REFERRAL_OVERDUE, date(2027, 1, 20)),
        # ... Fri 22 Jan = 22, Fri 29 = 27, Fri 5 Feb = 32, Fri 12 = 37, Mon 15 = 38,
        # Tue 16 = 39, Wed 17 Feb = 40.
        (date(2026, 12, 18), FIRST_CONTACT, date(2027, 2, 17)),
        # Easter 2027. Sentence Mon 15 Mar is day 0.
        # Tue 16 = 1 ... Fri 19 = 4, Mon 22 = 5 ... Thu 25 = 8; Good Friday 26 and Easter
        # Monday 29 are holidays; Tue 30 = 9, Wed 31 = 10, Thu 1 Apr = 11, Fri 2 = 12,
        # Fri 9 = 17, Mon 12 = 18, Tue 13 = 19, Wed 14 Apr = 20.
        (date(2027, 3, 15), REFERRAL_OVERDUE, date(2027, 4, 14)),
        # ... Fri 16 Apr = 22, Fri 23 = 27, Fri 30 = 32; Mon 3 May is a holiday;
        # Tue 4 = 33, Fri 7 = 36, Mon 10 = 37, Tue 11 = 38, Wed 12 = 39, Thu 13 May = 40.
        (date(2027, 3, 15), FIRST_CONTACT, date(2027, 5, 13)),
        # Substitute days. Sentence Fri 10 Dec 2027 is day 0.
        # Mon 13 = 1 ... Fri 17 = 5, Fri 24 = 10; Mon 27 and Tue 28 are substitutes;
        # Wed 29 = 11, Thu 30 = 12, Fri 31 = 13; Mon 3 Jan 2028 is a substitute;
        # Tue 4 = 14 ... Fri 7 = 17, Mon 10 = 18, Tue 11 = 19, Wed 12 Jan = 20.
        (date(2027, 12, 10), REFERRAL_OVERDUE, date(2028, 1, 12)),
        # ... Fri 14 Jan = 22, Fri 21 = 27, Fri 28 = 32, Fri 4 Feb = 37, Mon 7 = 38,
        # Tue 8 = 39, Wed 9 Feb = 40.
        (date(2027, 12, 10), FIRST_CONTACT, date(2028, 2, 9)),
        # State funeral. Sentence Fri 9 Sep 2022 is day 0.
        # Mon 12 = 1 ... Fri 16 = 5; Mon 19 is the funeral; Tue 20 = 6 ... Fri 23 = 9,
        # Fri 30 = 14, Fri 7 Oct = 19, Mon 10 Oct = 20.
        (date(2022, 9, 9), 5, date(2022, 9, 16)),
        (date(2022, 9, 9), 6, date(2022, 9, 20)),
        (date(2022, 9, 9), REFERRAL_OVERDUE, date(2022, 10, 10)),
        # ... Fri 14 Oct = 24, Fri 21 = 29, Fri 28 = 34, Fri 4 Nov = 39, Mon 7 Nov = 40.
        (date(2022, 9, 9), FIRST_CONTACT, date(2022, 11, 7)),
        # Coronation. Sentence Fri 28 Apr 2023 is day 0.
        # Mon 1 May is a holiday; Tue 2 = 1 ... Fri 5 = 4; Mon 8 is the coronation;
        # Tue 9 = 5 ... Fri 12 = 8, Fri 19 = 13, Fri 26 = 18; Mon 29 is a holiday;
        # Tue 30 = 19, Wed 31 May = 20.
        (date(2023, 4, 28), REFERRAL_OVERDUE, date(2023, 5, 31)),
        # ... Thu 1 Jun = 21, Fri 2 = 22, Fri 9 = 27, Fri 16 = 32, Fri 23 = 37, Mon 26 = 38,
        # Tue 27 = 39, Wed 28 Jun = 40.
        (date(2023, 4, 28), FIRST_CONTACT, date(2023, 6, 28)),
    ],
)
def test_working_days_after(sentenced: date, n: int, due: date) -> None:
    assert working_days_after(sentenced, n) == due


@pytest.mark.parametrize(
    ("trigger", "n", "due"),
    [
        # Sat 19 Dec 2026 is day 0; the weekend adds nothing, so Mon 21 is day 1.
        (date(2026, 12, 19), 1, date(2026, 12, 21)),
        # Same count as from Fri 18 Dec: Wed 20 Jan is day 20.
        (date(2026, 12, 19), REFERRAL_OVERDUE, date(2027, 1, 20)),
        # Sun 20 Dec is day 0; Mon 21 is day 1.
        (date(2026, 12, 20), 1, date(2026, 12, 21)),
        # Christmas Day is day 0; Mon 28 is a holiday, so Tue 29 is day 1.
        (date(2026, 12, 25), 1, date(2026, 12, 29)),
        # Thu 24 Dec 2026: Fri 25 and Mon 28 are holidays, Tue 29 is day 1.
        (date(2026, 12, 24), 1, date(2026, 12, 29)),
        # Fri 24 Dec 2027: Mon 27 and Tue 28 are substitutes, Wed 29 is day 1.
        (date(2027, 12, 24), 1, date(2027, 12, 29)),
        # An ordinary week: Mon 7 Jun 2027 + 5 = Mon 14 Jun.
        (date(2027, 6, 7), 5, date(2027, 6, 14)),
    ],
)
def test_working_days_after_a_non_working_trigger(trigger: date, n: int, due: date) -> None:
    assert working_days_after(trigger, n) == due


@pytest.mark.parametrize(
    "trigger",
    [
        date(2027, 6, 8),  # Tue, working day
        date(2026, 12, 19),  # Sat
        date(2026, 12, 25),  # bank holiday
    ],
)
def test_zero_working_days_is_the_trigger_day_itself(trigger: date) -> None:
    assert working_days_after(trigger, 0) == trigger


# --- calendar-day timers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hearing", "due"),
    [
        # 10 Mar 2027 back 10 days is 28 Feb (a 28-day February), back 18 more is 10 Feb.
        (date(2027, 3, 10), date(2027, 2, 10)),
        # Leap year: 10 Mar 2028 back 10 days is 29 Feb, back 18 more is 11 Feb.
        (date(2028, 3, 10), date(2028, 2, 11)),
        # Across the year: 5 Jan 2027 back 5 days is 31 Dec, back 23 more is 8 Dec 2026.
        (date(2027, 1, 5), date(2026, 12, 8)),
        # Calendar days ignore bank holidays: 22 Jan 2027 back 22 is 31 Dec, back 6 is 25 Dec.
        (date(2027, 1, 22), date(2026, 12, 25)),
    ],
)
def test_personal_statement_due_28_calendar_days_before_the_hearing(hearing: date, due: date) -> None:
    assert calendar_days_before(hearing, PERSONAL_STATEMENT) == due


@pytest.mark.parametrize(
    ("decided", "window_ends"),
    [
        # 10 Dec 2027 + 21 = 31 Dec 2027 (past the Christmas substitutes, which do not count).
        (date(2027, 12, 10), date(2027, 12, 31)),
        # Leap year: 20 Feb 2028 + 9 = 29 Feb, + 12 more = 12 Mar.
        (date(2028, 2, 20), date(2028, 3, 12)),
        # Across the year: 20 Dec 2026 + 11 = 31 Dec, + 10 more = 10 Jan 2027.
        (date(2026, 12, 20), date(2027, 1, 10)),
    ],
)
def test_reconsideration_window_ends_21_calendar_days_after_the_decision(
    decided: date, window_ends: date
) -> None:
    assert calendar_days_after(decided, RECONSIDERATION) == window_ends


def test_zero_calendar_days_is_the_day_itself() -> None:
    day = date(2027, 3, 26)
    assert calendar_days_after(day, 0) == day
    assert calendar_days_before(day, 0) == day


# --- working_days_between ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        # The referral count above, read the other way: Fri 18 Dec 2026 to Wed 20 Jan 2027.
        (date(2026, 12, 18), date(2027, 1, 20), 20),
        (date(2026, 12, 18), date(2027, 2, 17), 40),
        # Thu 24 to Tue 29 Dec 2026: Fri 25, Sat, Sun, Mon 28 do not count; Tue 29 does.
        (date(2026, 12, 24), date(2026, 12, 29), 1),
        # The start is excluded, the end included: Fri 9 to Mon 19 Sep 2022 is Mon 12 to Fri 16.
        (date(2022, 9, 9), date(2022, 9, 19), 5),
        (date(2022, 9, 9), date(2022, 9, 20), 6),
        # Mon 7 to Fri 11 Jun 2027: Tue, Wed, Thu, Fri.
        (date(2027, 6, 7), date(2027, 6, 11), 4),
        # A weekend only.
        (date(2027, 6, 11), date(2027, 6, 13), 0),
        # Same day, and end before start.
        (date(2027, 6, 8), date(2027, 6, 8), 0),
        (date(2027, 6, 8), date(2027, 6, 1), 0),
    ],
)
def test_working_days_between(start: date, end: date, count: int) -> None:
    assert working_days_between(start, end) == count


@pytest.mark.parametrize("start", [date(2026, 12, 18), date(2027, 12, 25), date(2022, 9, 17)])
@pytest.mark.parametrize("n", [0, 1, 7, 20, 40, 260])
def test_between_counts_back_what_after_counted_forward(start: date, n: int) -> None:
    assert working_days_between(start, working_days_after(start, n)) == n


# --- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: working_days_after(date(2027, 1, 4), -1),
        lambda: calendar_days_after(date(2027, 1, 4), -1),
        lambda: calendar_days_before(date(2027, 1, 4), -1),
    ],
)
def test_negative_counts_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        call()


def test_a_datetime_is_rejected_rather_than_missing_holidays() -> None:
    # datetime(2026, 12, 25) != date(2026, 12, 25), so it would slip past the holiday set.
    with pytest.raises(TypeError, match="calendar date"):
        is_working_day(datetime(2026, 12, 25, 9, 0))
    with pytest.raises(TypeError, match="calendar date"):
        working_days_after(datetime(2026, 12, 18, 9, 0), 20)
