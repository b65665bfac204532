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
    timers_pending: dict[str, int]
    timers_overdue: dict[str, int]
    urgent_unacknowledged: int


def watched_counts(session: Session, now: datetime) -> WatchedCounts:
    live = (Timer.fired_at.is_(None), Timer.stopped_at.is_(None))
    pending = session.execute(select(Timer.kind, func.count()).where(*live).group_by(Timer.kind)).all()
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
    return WatchedCounts(
        timers_pending={kind: count for kind, count in pending},
        timers_overdue={kind: count for kind, count in overdue},
        urgent_unacknowledged=urgent or 0,
    )
