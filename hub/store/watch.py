"""The counts operators watch in metrics: deadlines pending and overdue, urgent notifications unanswered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.store.models import Notification, Timer

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
    so they are cheap to count every time; pending timers are not: a store of a million cases keeps about a
    million annual updates running (measured: 0.5 s to count them on SQLite), so the worker asks for them less
    often."""
    live = (Timer.fired_at.is_(None), Timer.stopped_at.is_(None))
    overdue = session.execute(
        select(Timer.kind, func.count()).where(*live, Timer.due_at < now - OVERDUE_AFTER).group_by(Timer.kind)
    ).all()
    urgent = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.priority == "urgent",
            Notification.acknowledged_at.is_(None),
            Notification.withdrawn_at.is_(None),
        )
    )
    pending = None
    if with_pending:
        rows = session.execute(select(Timer.kind, func.count()).where(*live).group_by(Timer.kind)).all()
        pending = {kind: count for kind, count in rows}
    return WatchedCounts(
        timers_overdue={kind: count for kind, count in overdue},
        urgent_unacknowledged=urgent or 0,
        timers_pending=pending,
    )
