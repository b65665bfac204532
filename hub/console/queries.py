"""What the console reads from the case store: parked events, overdue deadlines, unacknowledged urgent
notifications, dead-letter replays and purges, and when each source was last heard from.

Only columns that carry no personal data are selected (no payloads, names, postcodes or case content).
Every function blocks: the console runs them with asyncio.to_thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import Session, aliased

from hub.store.models import (
    Case,
    Notification,
    OperatorAction,
    ParkedEvent,
    ProcessedEvent,
    PurgedDeadLetter,
    Timer,
    Victim,
)
from routing.timers import TimerKind

LISTED = 50  # rows of each list; the totals are counted in full
# Past due by less than this is only between two timer checks (as hub_timers_overdue counts it).
OVERDUE_AFTER = timedelta(minutes=1)
ESCALATED_SHOWN_DAYS = 7  # missed deadlines stay on the list this long after they escalated
REPLAYS_REMEMBERED_DAYS = 30
DEAD_LETTER_ID = re.compile(r"\b\d+:\d+\b")


@dataclass(frozen=True)
class Replayed:
    at: datetime
    by: str


def _age(now: datetime, then: datetime | None) -> float | None:
    return round((now - then).total_seconds()) if then is not None else None


def parked(engine: Engine, now: datetime) -> dict:
    with Session(engine) as session:
        total, oldest = session.execute(select(func.count(), func.min(ParkedEvent.parked_at))).one()
        rows = session.execute(
            select(ParkedEvent.event_type, ParkedEvent.source, ParkedEvent.parked_at)
            .order_by(ParkedEvent.parked_at)
            .limit(LISTED)
        ).all()
    return {
        "total": total,
        "oldest_age_seconds": _age(now, oldest),
        "items": [
            {"event_type": event_type, "source": source, "age_seconds": _age(now, at)}
            for event_type, source, at in rows
        ],
    }


def overdue(engine: Engine, now: datetime) -> dict:
    """Deadlines past due: not fired yet (the worker is behind) or fired lately (a task was missed)."""
    victim = aliased(Victim)
    recent = now - timedelta(days=ESCALATED_SHOWN_DAYS)
    wanted = and_(
        Timer.stopped_at.is_(None),
        Timer.kind != TimerKind.URGENT_UNACKNOWLEDGED.value,  # listed with the urgent notifications
        (Timer.fired_at.is_(None) & (Timer.due_at < now - OVERDUE_AFTER)) | (Timer.fired_at >= recent),
    )
    with Session(engine) as session:
        waiting = session.scalar(
            select(func.count()).select_from(Timer).where(wanted, Timer.fired_at.is_(None))
        )
        escalated = session.scalar(
            select(func.count()).select_from(Timer).where(wanted, Timer.fired_at.is_not(None))
        )
        rows = session.execute(
            select(Timer.kind, Timer.due_at, Timer.fired_at, Case.owning_unit_code, victim.unit_code)
            .join(Case, Timer.case_id == Case.id)
            .outerjoin(victim, Timer.victim_id == victim.id)
            .where(wanted)
            # Not yet fired first: those are the ones the hub itself is late with.
            .order_by(Timer.fired_at.is_not(None), Timer.due_at)
            .limit(LISTED)
        ).all()
    return {
        "waiting": waiting or 0,
        "escalated": escalated or 0,
        "items": [
            {
                "timer": kind,
                "unit": victim_unit or case_unit,
                "due_at": due_at.isoformat(),
                "overdue_seconds": _age(now, due_at),
                "escalated_seconds_ago": _age(now, fired_at),
            }
            for kind, due_at, fired_at, case_unit, victim_unit in rows
        ],
    }


def urgent_unacknowledged(engine: Engine, now: datetime) -> dict:
    escalation = aliased(Timer)
    wanted = and_(
        Notification.priority == "urgent",
        Notification.acknowledged_at.is_(None),
        Notification.withdrawn_at.is_(None),
    )
    escalated_to_triage = and_(
        escalation.cause == Notification.notification_id,
        escalation.kind == TimerKind.URGENT_UNACKNOWLEDGED.value,
    )
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Notification).where(wanted))
        escalated = session.scalar(
            select(func.count())
            .select_from(Notification)
            .join(escalation, escalated_to_triage)
            .where(wanted, escalation.fired_at.is_not(None))
        )
        rows = session.execute(
            select(
                Notification.notification_id,
                Notification.unit_code,
                Notification.kind,
                Notification.event_type,
                Notification.created_at,
                Notification.published_at,
                escalation.fired_at,
            )
            .outerjoin(escalation, escalated_to_triage)
            .where(wanted)
            .order_by(Notification.created_at)
            .limit(LISTED)
        ).all()
    return {
        "total": total or 0,
        "escalated": escalated or 0,
        "items": [
            {
                "notification_id": notification_id,
                "unit": unit,
                "kind": kind,
                "event_type": event_type,
                "age_seconds": _age(now, published or created),
                "escalated": fired is not None,
            }
            for notification_id, unit, kind, event_type, created, published, fired in rows
        ],
    }


def replayed_dead_letters(engine: Engine, now: datetime) -> dict[str, Replayed]:
    """Dead-letter ids replayed lately, from the audit (the console and `hub dlq replay` both record ids)."""
    since = now - timedelta(days=REPLAYS_REMEMBERED_DAYS)
    found: dict[str, Replayed] = {}
    with Session(engine) as session:
        rows = session.execute(
            select(OperatorAction.at, OperatorAction.actor, OperatorAction.target)
            .where(OperatorAction.action == "dlq.replay", OperatorAction.at >= since)
            .order_by(OperatorAction.at)
        ).all()
    for at, actor, target in rows:
        for letter_id in DEAD_LETTER_ID.findall(target):
            found[letter_id] = Replayed(at, actor)
    return found


def purged_dead_letters(engine: Engine) -> set[tuple[int, int]]:
    with Session(engine) as session:
        rows = session.execute(select(PurgedDeadLetter.partition, PurgedDeadLetter.offset))
        return {(partition, offset) for partition, offset in rows}


def last_event_per_source(engine: Engine) -> dict[str, datetime]:
    """When each source's last event was applied, to know silent sources before this worker hears them."""
    with Session(engine) as session:
        rows = session.execute(
            select(ProcessedEvent.source, func.max(ProcessedEvent.processed_at)).group_by(
                ProcessedEvent.source
            )
        ).all()
    return {source: at for source, at in rows if at is not None}
