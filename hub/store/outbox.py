"""The outboxes and the park as their readers see them: notifications and records for other agencies not yet on
their topics, what the broker has acknowledged, and the events waiting for a case. Plain records out, so nothing
that leaves a transaction holds a session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from hub.store.load import chunks, notification_from_row, parked_event_from_row
from hub.store.models import NOTIFICATIONS, OUTBOUND, PARKED, PARKED_KEYS
from hub.store.records import Notification, OutboxRecord, ParkedEvent, ParkedKey


def unpublished(
    connection: Connection, now: datetime, settled_before: datetime, limit: int = 1000
) -> list[Notification]:
    """Notifications to put on their queues: not published, not withdrawn, and either released from a hold or left
    unconfirmed since before `settled_before` (a batch still delivering its own is left alone)."""
    query = (
        select(NOTIFICATIONS)
        .where(
            NOTIFICATIONS.c.published_at.is_(None),
            NOTIFICATIONS.c.withdrawn_at.is_(None),
            NOTIFICATIONS.c.payload.is_not(None),  # dropped by the retention schedule: nothing to send
            or_(
                and_(NOTIFICATIONS.c.release_after.is_(None), NOTIFICATIONS.c.created_at <= settled_before),
                NOTIFICATIONS.c.release_after <= now,
            ),
        )
        .order_by(NOTIFICATIONS.c.created_at)
        .limit(limit)
    )
    return [notification_from_row(row) for row in connection.execute(query)]


def unpublished_outbound(
    connection: Connection, settled_before: datetime, limit: int = 1000
) -> list[OutboxRecord]:
    """Outbound records to put on their topics: not published, and left unconfirmed since before `settled_before`."""
    query = (
        select(OUTBOUND)
        .where(
            OUTBOUND.c.published_at.is_(None),
            OUTBOUND.c.payload.is_not(None),  # dropped by erasure or retention: nothing to send
            OUTBOUND.c.created_at <= settled_before,
        )
        .order_by(OUTBOUND.c.created_at, OUTBOUND.c.id)
        .limit(limit)
    )
    return [
        OutboxRecord(
            id=row.id,
            topic=row.topic,
            key=row.key,
            payload=row.payload,
            record_type=row.record_type,
            case=None,
            created_at=row.created_at,
            person_ref=row.person_ref,
            published_at=row.published_at,
        )
        for row in connection.execute(query)
    ]


def mark_published(connection: Connection, notification_ids: list[str], at: datetime) -> None:
    for chunk in chunks(notification_ids):
        connection.execute(
            update(NOTIFICATIONS).where(NOTIFICATIONS.c.notification_id.in_(chunk)).values(published_at=at)
        )


def mark_outbound_published(connection: Connection, record_ids: list[int], at: datetime) -> None:
    for chunk in chunks(record_ids):
        connection.execute(update(OUTBOUND).where(OUTBOUND.c.id.in_(chunk)).values(published_at=at))


def parked(connection: Connection, older_than: datetime | None = None) -> list[ParkedEvent]:
    """Events waiting for a case, oldest first, with every key each waits under."""
    query = select(PARKED).order_by(PARKED.c.parked_at)
    if older_than is not None:
        query = query.where(PARKED.c.parked_at <= older_than)
    rows: Sequence[Row[Any]] = connection.execute(query).all()
    found = [parked_event_from_row(row) for row in rows]
    by_id = {event.id: event for event in found}
    for chunk in chunks(sorted(by_id)):  # type: ignore[type-var]
        keys = select(PARKED_KEYS.c.parked_event_id, PARKED_KEYS.c.kind, PARKED_KEYS.c.value).where(
            PARKED_KEYS.c.parked_event_id.in_(chunk)
        )
        for parked_event_id, kind, value in connection.execute(keys):
            by_id[parked_event_id].keys.append(ParkedKey(kind, value))
    return found


def parked_summary(connection: Connection) -> tuple[int, datetime | None]:
    """How many events are parked, and when the oldest was: what the gauges show, without reading them."""
    count, oldest = connection.execute(select(func.count(), func.min(PARKED.c.parked_at))).one()
    return count, oldest
