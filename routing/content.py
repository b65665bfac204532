"""What a notification may say: built only from facts the victim is entitled to (DOMAIN.md sections 5 and 7).

Each builder takes the few facts it needs as plain values, never the whole agency record, so an offender's
location, release address or a clinical field cannot reach a notification by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Condition:
    text: str
    victim_related: bool


@dataclass(frozen=True)
class OmittedRequest:
    text: str
    reason: str


@dataclass(frozen=True)
class NotificationContent:
    summary: str  # plain English, no location
    facts: dict[str, str] = field(default_factory=dict)
    victim_conditions: tuple[str, ...] = ()
    omitted_requests: tuple[OmittedRequest, ...] = ()
    due_by: date | None = None


RELEASE_TYPE_WORDS = {
    "automatic": "automatic release",
    "parole": "release on parole",
    "hdc": "release on home detention curfew",
    "compassionate": "compassionate release",
    "end_of_sentence": "release at the end of the sentence",
    "on_appeal": "release following an appeal",
    "other": "release",
}


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def victim_conditions(conditions: Iterable[Condition]) -> tuple[str, ...]:
    """Only conditions that protect a victim are shown, worded as the licence states them."""
    return tuple(c.text for c in conditions if c.victim_related)


def prisoner_released(
    release_type: str, release_date: date, conditions: Iterable[Condition]
) -> NotificationContent:
    shown = victim_conditions(conditions)
    summary = f"The offender was released from custody on {long_date(release_date)} ({RELEASE_TYPE_WORDS[release_type]})."
    if shown:
        summary += f" {len(shown)} licence condition(s) protect the victim."
    return NotificationContent(
        summary=summary,
        facts={"release_date": release_date.isoformat(), "release_type": release_type},
        victim_conditions=shown,
    )
