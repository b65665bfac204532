"""Reads and writes of the case store, one SQLAlchemy session at a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.orm import Session, selectinload

from hub.store.models import (
    Base,
    Case,
    Notification,
    Offender,
    OffenderIdentifier,
    ParkedEvent,
    ParkedEventKey,
    ProcessedEvent,
)

IdentifierKey = tuple[str, str]  # (kind, value), for example ("noms_number", "A1234BC")


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL, with the tables created if missing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the CLI read while the worker writes; foreign keys are off by default in SQLite.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine


class CaseStore:
    """The queries the pipeline needs, on one open session (one transaction per batch)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # de-duplication
    def already_processed(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        rows = self.session.scalars(select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(ids)))
        return set(rows)

    def mark_processed(self, event_id: str, event_type: str, source: str, at: datetime) -> None:
        self.session.add(
            ProcessedEvent(event_id=event_id, event_type=event_type, source=source, processed_at=at)
        )

    # identity
    def find_offender(self, keys: Iterable[IdentifierKey]) -> Offender | None:
        for kind, value in keys:
            row = self.session.scalar(
                select(OffenderIdentifier).where(
                    OffenderIdentifier.kind == kind, OffenderIdentifier.value == value
                )
            )
            if row is not None:
                return row.offender
        return None

    def link(self, offender: Offender, keys: Iterable[IdentifierKey]) -> list[IdentifierKey]:
        """Attach identifiers to an offender; returns the ones that are new (and may unpark events)."""
        known = {(i.kind, i.value) for i in offender.identifiers}
        added = []
        for key in keys:
            if key in known:
                continue
            self.session.add(OffenderIdentifier(offender=offender, kind=key[0], value=key[1]))
            known.add(key)
            added.append(key)
        self.session.flush()
        return added

    def new_offender(self) -> Offender:
        offender = Offender()
        self.session.add(offender)
        return offender

    # cases
    def case_by_ref(self, case_ref: str) -> Case | None:
        return self.session.scalar(
            select(Case).where(Case.case_ref == case_ref).options(selectinload(Case.victims))
        )

    # parked events
    def is_parked(self, event_id: str) -> bool:
        return self.session.scalar(select(ParkedEvent.id).where(ParkedEvent.event_id == event_id)) is not None

    def park(self, parked: ParkedEvent, keys: Iterable[IdentifierKey]) -> None:
        parked.keys = [ParkedEventKey(kind=kind, value=value) for kind, value in keys]
        self.session.add(parked)

    def take_parked(self, keys: Iterable[IdentifierKey]) -> list[ParkedEvent]:
        """Parked events waiting on any of these identifiers, removed from the park, in the order published."""
        found: dict[int, ParkedEvent] = {}
        for kind, value in keys:
            rows = self.session.scalars(
                select(ParkedEvent)
                .join(ParkedEventKey)
                .where(ParkedEventKey.kind == kind, ParkedEventKey.value == value)
            )
            for row in rows:
                found[row.id] = row
        parked = sorted(found.values(), key=lambda p: (p.published_at, p.id))
        for row in parked:
            self.session.delete(row)
        return parked

    # outbox
    def add_notification(self, notification: Notification) -> bool:
        """Keep a notification unless one with the same id exists; True when it is new."""
        if self.session.get(Notification, notification.notification_id) is not None:
            return False
        self.session.add(notification)
        return True

    def unpublished(self, limit: int = 1000) -> list[Notification]:
        return list(
            self.session.scalars(
                select(Notification)
                .where(Notification.published_at.is_(None))
                .order_by(Notification.created_at)
                .limit(limit)
            )
        )

    def mark_published(self, notification_ids: list[str], at: datetime) -> None:
        if notification_ids:
            self.session.execute(
                update(Notification)
                .where(Notification.notification_id.in_(notification_ids))
                .values(published_at=at)
            )
