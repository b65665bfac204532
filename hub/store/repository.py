"""Reads and writes of the case store, one SQLAlchemy session at a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, and_, create_engine, event, or_, select, update
from sqlalchemy.orm import Session, selectinload

from hub.store.migrate import upgrade
from hub.store.models import (
    Case,
    Notification,
    Offender,
    OffenderIdentifier,
    ParkedEvent,
    ParkedEventKey,
    ProcessedEvent,
    Timer,
    Victim,
)

IdentifierKey = tuple[str, str]  # (kind, value), for example ("noms_number", "A1234BC")


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL, its tables migrated to the current version."""
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
    upgrade(engine)
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

    def offenders_for(self, keys: Iterable[IdentifierKey]) -> list[Offender]:
        """Every distinct offender any of these identifiers belongs to, in the order of the keys."""
        keys = list(keys)
        if not keys:
            return []
        rows = self.session.scalars(
            select(OffenderIdentifier).where(
                or_(*(and_(OffenderIdentifier.kind == k, OffenderIdentifier.value == v) for k, v in keys))
            )
        ).all()
        by_key = {(row.kind, row.value): row.offender for row in rows}
        found: list[Offender] = []
        for key in keys:
            offender = by_key.get(key)
            if offender is not None and offender not in found:
                found.append(offender)
        return found

    def owners(self, keys: Iterable[IdentifierKey]) -> dict[IdentifierKey, Offender]:
        """Which offender each known identifier belongs to."""
        owners = {}
        for key in keys:
            found = self.offenders_for([key])
            if found:
                owners[key] = found[0]
        return owners

    def merge_offenders(self, keep: Offender, remove: Offender) -> None:
        """Every identifier and case of `remove` moves to `keep`: a merge re-keys, it never copies."""
        for identifier in list(remove.identifiers):
            identifier.offender = keep
        for case in list(remove.cases):
            case.offender = keep
        self.session.flush()
        self.session.delete(remove)
        self.session.flush()

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

    def victims_by_person(self, person_ref: str) -> list[Victim]:
        return list(self.session.scalars(select(Victim).where(Victim.person_ref == person_ref)))

    # timers
    def start_timer(self, timer: Timer) -> None:
        """Start a timer unless the same one (kind, case, victim, cause) is already running."""
        self.session.flush()  # the case and victim need their ids
        same_victim = Timer.victim_id == timer.victim.id if timer.victim else Timer.victim_id.is_(None)
        existing = self.session.scalar(
            select(Timer).where(
                Timer.kind == timer.kind,
                Timer.case_id == timer.case.id,
                same_victim,
                Timer.cause == timer.cause,
            )
        )
        if existing is None:
            self.session.add(timer)
        elif existing.stopped_at is None and existing.fired_at is None:
            existing.due_at = timer.due_at

    def has_timer(self, case: Case, victim: Victim | None, kind: str) -> bool:
        self.session.flush()
        same_victim = Timer.victim_id == victim.id if victim else Timer.victim_id.is_(None)
        found = select(Timer.id).where(Timer.case_id == case.id, same_victim, Timer.kind == kind).limit(1)
        return self.session.scalar(found) is not None

    def stop_timers(self, case: Case, victim: Victim | None, kinds: list[str], at: datetime) -> None:
        query = update(Timer).where(
            Timer.case_id == case.id,
            Timer.kind.in_(kinds),
            Timer.stopped_at.is_(None),
            Timer.fired_at.is_(None),
        )
        if victim is not None:
            query = query.where(Timer.victim_id == victim.id)
        self.session.execute(query.values(stopped_at=at))

    def stop_timers_caused_by(self, cause: str, at: datetime) -> None:
        self.session.execute(
            update(Timer).where(Timer.cause == cause, Timer.stopped_at.is_(None)).values(stopped_at=at)
        )

    def due_timers(self, now: datetime, limit: int = 500) -> list[Timer]:
        return list(
            self.session.scalars(
                select(Timer)
                .where(Timer.due_at <= now, Timer.stopped_at.is_(None), Timer.fired_at.is_(None))
                .order_by(Timer.due_at)
                .limit(limit)
            )
        )

    # parked events
    def is_parked(self, event_id: str) -> bool:
        return self.session.scalar(select(ParkedEvent.id).where(ParkedEvent.event_id == event_id)) is not None

    def park(self, parked: ParkedEvent, keys: Iterable[IdentifierKey]) -> None:
        parked.keys = [ParkedEventKey(kind=kind, value=value) for kind, value in keys]
        self.session.add(parked)

    def parked(self, older_than: datetime | None = None) -> list[ParkedEvent]:
        query = select(ParkedEvent).order_by(ParkedEvent.parked_at)
        if older_than is not None:
            query = query.where(ParkedEvent.parked_at <= older_than)
        return list(self.session.scalars(query.options(selectinload(ParkedEvent.keys))))

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

    def notification(self, notification_id: str) -> Notification | None:
        return self.session.get(Notification, notification_id)

    def notifications_from(self, source_event_id: str) -> list[Notification]:
        return list(
            self.session.scalars(select(Notification).where(Notification.source_event_id == source_event_id))
        )

    def unpublished(self, now: datetime, settled_before: datetime, limit: int = 1000) -> list[Notification]:
        """Notifications to put on their queues: not published, not withdrawn, and either released from a hold
        or left unconfirmed since before `settled_before` (a batch still delivering its own is left alone)."""
        return list(
            self.session.scalars(
                select(Notification)
                .where(
                    Notification.published_at.is_(None),
                    Notification.withdrawn_at.is_(None),
                    or_(
                        and_(Notification.release_after.is_(None), Notification.created_at <= settled_before),
                        Notification.release_after <= now,
                    ),
                )
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
