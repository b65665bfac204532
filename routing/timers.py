"""Deadlines (docs/domain.md section 6): when each timer is due and what it says when it fires.

Working days are England and Wales working days; the trigger day is day 0. A timer due on a day fires once
that day is over in England (midnight, London time), so a referral that arrives on its last day is on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from routing.calendar import working_days_after
from routing.content import NotificationContent, long_date
from routing.decisions import TASK, URGENT_ESCALATION, Decision, Kind

LONDON = ZoneInfo("Europe/London")
REFERRAL_WORKING_DAYS = 20
FIRST_CONTACT_WORKING_DAYS = 40


class TimerKind(StrEnum):
    REFERRAL_OVERDUE = "referral_overdue"
    FIRST_CONTACT = "first_contact"
    ANNUAL_UPDATE = "annual_update"
    URGENT_UNACKNOWLEDGED = "urgent_unacknowledged"


def end_of_day(day: date) -> datetime:
    """The instant `day` ends in England, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=LONDON).astimezone(UTC)


def london_day(instant: datetime) -> date:
    return instant.astimezone(LONDON).date()


def referral_due(sentence_date: date) -> date:
    return working_days_after(sentence_date, REFERRAL_WORKING_DAYS)


def first_contact_due(sentence_date: date) -> date:
    return working_days_after(sentence_date, FIRST_CONTACT_WORKING_DAYS)


def annual_update_due(last_contact: date) -> date:
    try:
        return last_contact.replace(year=last_contact.year + 1)
    except ValueError:  # 29 February
        return last_contact.replace(year=last_contact.year + 1, day=28)


@dataclass(frozen=True)
class Firing:
    """What a due timer raises, and to whom."""

    kind: Kind
    decision: Decision
    content: NotificationContent
    to_triage: bool  # the unit's triage rather than the allocated VLO


def on_fire(timer: TimerKind, due_day: date, youth: bool = False, about: str | None = None) -> Firing:
    """What a due timer raises. `about` names the event behind an unacknowledged urgent notification."""
    match timer:
        case TimerKind.REFERRAL_OVERDUE:
            chase = "the youth offending team" if youth else "witness care"
            return Firing(
                Kind.ESCALATION,
                TASK,
                NotificationContent(
                    f"No victim has been referred for this eligible case; the referral was due by "
                    f"{long_date(due_day)}. Chase {chase}.",
                    {"referral_due": due_day.isoformat()},
                    due_by=due_day,
                ),
                to_triage=True,
            )
        case TimerKind.FIRST_CONTACT:
            return Firing(
                Kind.ESCALATION,
                TASK,
                NotificationContent(
                    f"First contact with the victim was due by {long_date(due_day)} and is not recorded.",
                    {"first_contact_due": due_day.isoformat()},
                    due_by=due_day,
                ),
                to_triage=True,
            )
        case TimerKind.ANNUAL_UPDATE:
            return Firing(
                Kind.TASK,
                TASK,
                NotificationContent(
                    f"Twelve months have passed since the victim was last contacted ({long_date(due_day)} was the "
                    "anniversary): give the annual update.",
                    {"annual_update_due": due_day.isoformat()},
                    due_by=due_day,
                ),
                to_triage=False,
            )
        case TimerKind.URGENT_UNACKNOWLEDGED:
            return Firing(
                Kind.ESCALATION,
                URGENT_ESCALATION,
                NotificationContent(
                    f"An urgent notification ({about or 'event'}) has not been acknowledged by the VLO. Triage must "
                    "review the victim's safety now.",
                    {"unacknowledged_event_type": about} if about else {},
                ),
                to_triage=True,
            )
    raise ValueError(f"unknown timer {timer}")


def first_contact_task(due_day: date) -> NotificationContent:
    """Raised to the victim's VLO when a victim is referred."""
    return NotificationContent(
        f"A victim has been referred. Offer the Victim Contact Scheme: first contact is due by {long_date(due_day)}.",
        {"first_contact_due": due_day.isoformat()},
        due_by=due_day,
    )
