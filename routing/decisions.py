"""Per victim: whether the VLO is asked to inform the victim, only record, or review safety; and the ids.

docs/domain.md section 5.5: preferences decide if the VLO tells the victim; a victim who opted out or did not
choose the category still has the event recorded; urgent events always reach the VLO as a safety review.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from routing.catalogue import Category, EventRule


class Action(StrEnum):
    INFORM_VICTIM = "inform_victim"
    RECORD_ONLY = "record_only"
    SAFETY_REVIEW = "safety_review"
    TASK = "task"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class Kind(StrEnum):
    EVENT = "event"
    TASK = "task"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class VictimChoices:
    """What routing needs to know of one victim's wishes."""

    categories: Collection[str] | None  # None: has not chosen yet
    opted_out: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    priority: Priority


# Deadlines ask the VLO (or the unit) to act; they outrank routine events in the queue.
TASK = Decision(Action.TASK, Priority.HIGH)
# An urgent notification nobody acknowledged goes to the unit's triage as a safety review.
URGENT_ESCALATION = Decision(Action.SAFETY_REVIEW, Priority.URGENT)


def decide(rule: EventRule, victim: VictimChoices) -> Decision:
    if rule.urgent:
        return Decision(Action.SAFETY_REVIEW, Priority.URGENT)
    wants_it = (
        not victim.opted_out
        and rule.category is not None
        and rule.category is not Category.RECORD_ONLY
        and victim.categories is not None
        and rule.category in victim.categories
    )
    return Decision(Action.INFORM_VICTIM if wants_it else Action.RECORD_ONLY, Priority.NORMAL)


# Fixed forever: changing it would give every notification a new id and defeat de-duplication.
NOTIFICATION_NAMESPACE = uuid.UUID("6f1d3c1e-9a51-4f0e-8a43-6d2b4b1c7e20")


def notification_id(kind: Kind, cause: str, case_ref: str, person_ref: str | None) -> str:
    """The same inputs always give the same id, so a retry or a redelivery never makes a second one.

    `cause` is the source event id for an event notification, or the timer's name and due day for a task.
    """
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{kind}|{cause}|{case_ref}|{person_ref or '-'}"))
