"""Deadlines: when each timer is due (England and Wales working days) and what fires."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from routing.decisions import Action, Kind, Priority
from routing.timers import (
    TimerKind,
    annual_update_due,
    end_of_day,
    first_contact_due,
    london_day,
    on_fire,
    referral_due,
)


@pytest.mark.parametrize(
    ("sentenced", "referral", "first_contact"),
    [
        # Fri 18 Dec 2026. Working days skip 25, 28 Dec (Boxing Day observed) and 1 Jan 2027:
        # Dec 21,22,23,24,29,30,31 (7), Jan 4-8 (12), 11-15 (17), 18,19,20 (20) -> Wed 20 Jan.
        # ...then Jan 21,22 (22), 25-29 (27), Feb 1-5 (32), 8-12 (37), 15,16,17 (40) -> Wed 17 Feb.
        (date(2026, 12, 18), date(2027, 1, 20), date(2027, 2, 17)),
        # Thu 18 Mar 2027, across Easter (Good Friday 26 Mar, Easter Monday 29 Mar):
        # Mar 19 (1), 22-25 (5), 30,31 (7), Apr 1,2 (9), 5-9 (14), 12-16 (19), 19 (20) -> Mon 19 Apr.
        (date(2027, 3, 18), date(2027, 4, 19), date(2027, 5, 18)),
    ],
)
def test_referral_and_first_contact_deadlines_count_working_days(
    sentenced: date, referral: date, first_contact: date
) -> None:
    assert referral_due(sentenced) == referral
    assert first_contact_due(sentenced) == first_contact


def test_a_deadline_day_ends_at_midnight_in_england() -> None:
    # Winter: London is on UTC.
    assert end_of_day(date(2027, 1, 20)) == datetime(2027, 1, 21, 0, 0, tzinfo=UTC)
    # Summer: London is an hour ahead, so the day ends at 23:00 UTC.
    assert end_of_day(date(2027, 7, 20)) == datetime(2027, 7, 20, 23, 0, tzinfo=UTC)
    assert london_day(datetime(2027, 7, 20, 23, 30, tzinfo=UTC)) == date(2027, 7, 21)


def test_the_annual_update_is_due_a_year_after_the_last_contact() -> None:
    assert annual_update_due(date(2026, 3, 2)) == date(2027, 3, 2)
    assert annual_update_due(date(2028, 2, 29)) == date(2029, 2, 28)


@pytest.mark.parametrize(
    ("timer", "kind", "action", "priority", "to_triage"),
    [
        (TimerKind.REFERRAL_OVERDUE, Kind.ESCALATION, Action.TASK, Priority.HIGH, True),
        (TimerKind.FIRST_CONTACT, Kind.ESCALATION, Action.TASK, Priority.HIGH, True),
        (TimerKind.ANNUAL_UPDATE, Kind.TASK, Action.TASK, Priority.HIGH, False),
        (TimerKind.URGENT_UNACKNOWLEDGED, Kind.ESCALATION, Action.SAFETY_REVIEW, Priority.URGENT, True),
    ],
)
def test_what_each_timer_raises(
    timer: TimerKind, kind: Kind, action: Action, priority: Priority, to_triage: bool
) -> None:
    firing = on_fire(timer, date(2027, 1, 20))
    assert (firing.kind, firing.decision.action, firing.decision.priority, firing.to_triage) == (
        kind,
        action,
        priority,
        to_triage,
    )


def test_an_overdue_referral_says_whom_to_chase() -> None:
    assert "witness care" in on_fire(TimerKind.REFERRAL_OVERDUE, date(2027, 1, 20)).content.summary
    youth = on_fire(TimerKind.REFERRAL_OVERDUE, date(2027, 1, 20), youth=True).content.summary
    assert "youth offending team" in youth
    assert on_fire(TimerKind.REFERRAL_OVERDUE, date(2027, 1, 20)).content.due_by == date(2027, 1, 20)
