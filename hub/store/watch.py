"""The counts operators watch in metrics: deadlines pending and overdue, urgent notifications unanswered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from hub.store.models import TIMER_RUNNING, Notification, Timer

# A deadline this far past due and still not fired means the worker is behind, not merely between checks.
OVERDUE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class WatchedCounts:
    timers_overdue: dict[str, int]
    urgent_unacknowledged: int
    # None when not counted this time (see `watched_counts`).
    timers_pending: dict[str, int] | None


def watched_counts(session: Session, now: datetime, *, with_pending: bool = True) -> WatchedCounts:
    """What the deadline gauges show. Overdue timers and unanswered urgent notifications are few and indexed,
    so they are cheap to count every time; pending timers are not: a store keeps an annual update running for
    about every case, and counting them takes a noticeable part of a second in a large store, so the worker asks
    for them less often."""
    overdue = _running_timers_by_kind(session, Timer.due_at < now - OVERDUE_AFTER)
    urgent = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.priority == "urgent",
            Notification.acknowledged_at.is_(None),
            Notification.withdrawn_at.is_(None),
        )
    )
    pending = _running_timers_by_kind(session) if with_pending else None
    return WatchedCounts(
        timers_overdue=overdue,
        urgent_unacknowledged=urgent or 0,
        timers_pending=pending,
    )


def _running_timers_by_kind(session: Session, *conditions: ColumnElement[bool]) -> dict[str, int]:
    """Running timers counted by kind. The running timers are picked first, in a subquery that OFFSET 0 keeps
    apart (SQLite does not merge such a subquery into the outer query, and PostgreSQL takes it as a fence): asked
    as one GROUP BY, SQLite walks the unique index on (kind, ...) to group without sorting, over every timer
    ever started, which in a large store takes seconds where counting the running ones first takes
    milliseconds."""
    running = select(Timer.kind).where(*TIMER_RUNNING, *conditions).offset(0).subquery()
    rows = session.execute(select(running.c.kind, func.count()).group_by(running.c.kind))
    return {kind: count for kind, count in rows}
