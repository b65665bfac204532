"""Reads and writes of the case store, one SQLAlchemy session at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.pool import ConnectionPoolEntry

from connectors.keys import KeysDirectory, write_data_key
from hub.errors import DataKeysMissing
from hub.settings import Settings
from hub.store.encryption import DataKeys, attach
from hub.store.migrate import upgrade
from hub.store.models import (
    TIMER_RUNNING,
    Case,
    LicenceRequest,
    Notification,
    Offender,
    OffenderIdentifier,
    OutboxRecord,
    ParkedEvent,
    ParkedEventKey,
    ProcessedEvent,
    Timer,
    Victim,
)

SQLITE_CACHE_KIB = 64 * 1024  # per connection; pages are taken only as they are read
IdentifierKey = tuple[str, str]  # (kind, value), for example ("noms_number", "A1234BC")


def make_engine(
    url: str, data_keys: DataKeys | None = None, connect_args: Mapping[str, str] | None = None
) -> Engine:
    """An engine for SQLite or PostgreSQL, its tables migrated to the current version. Without `data_keys` it
    reads and writes no encrypted column (DataKeysMissing): a tool that only counts rows needs none."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets the CLI read while the worker writes; foreign keys are off by default in SQLite.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # What is deleted or anonymised is overwritten in the file, not left in free pages (hub/erasure.py).
            cursor.execute("PRAGMA secure_delete=ON")
            # SQLite's default page cache is 2 MiB: with a million cases every lookup would read from the file.
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args=dict(connect_args or {}))
    upgrade(engine)
    return attach(engine, data_keys)


def data_keys(settings: Settings) -> DataKeys:
    """The case store's data keys from the keys directory. The embedded default makes one on first use; a
    deployment's keys directory must hold one (`hub keys new --data`): nothing is ever stored in clear."""
    keys = KeysDirectory(settings.resolved_keys_dir)
    if settings.keys_dir is None and not keys.data_keys():
        write_data_key(keys.data)
    found = keys.data_keys()
    if not found:
        raise DataKeysMissing(
            f"no data key in {keys.data}: make one with `hub keys new --data` (the case store is encrypted at rest)"
        )
    return DataKeys(found, keys.data)


def open_store(settings: Settings) -> Engine:
    """The case store as the settings name it, with its data keys and TLS settings: what the hub's processes use."""
    return make_engine(settings.resolved_database_url, data_keys(settings), settings.database_connect_args)


# A bulk update brings the timers already in the session up to date from the rows it changed (RETURNING), not
# by evaluating its criteria against every object in the session ("evaluate"), which a prefetched batch makes
# slow.
_SYNC = "fetch"
# Most values in one IN (...) list: well inside SQLite's and PostgreSQL's limits on bound parameters.
_IN_CHUNK = 500


def _chunks(values: list, size: int = _IN_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# A timer that has stopped or fired is never changed again; only what it was for matters: (kind, cause, victim id).
FinishedTimer = tuple[str, str, int | None]


@dataclass
class CaseTimers:
    """One case's timers in this transaction: the running ones as objects (they may be stopped or moved), and
    the finished ones as keys only, since a case keeps every timer it ever had and loading each as an object
    cost more than the rest of an event's reads."""

    running: list[Timer] = field(default_factory=list)  # running when read, or started in this transaction
    finished: set[FinishedTimer] = field(default_factory=set)

    def finished_for(self, kind: str, victim: Victim | None, cause: str | None = None) -> bool:
        if victim is not None and victim.id is None:
            return False  # a victim not yet written has no timer rows
        victim_id = victim.id if victim is not None else None
        return any(
            k == kind and v == victim_id and (cause is None or c == cause) for k, c, v in self.finished
        )


def _same_victim(timer: Timer, victim: Victim | None) -> bool:
    """Whether a timer is for this victim (None: for the case itself), without loading anything: a timer
    started in this transaction holds its victim object; one read from the database, its victim's id."""
    if "victim" in timer.__dict__:
        return timer.__dict__["victim"] is victim
    if victim is None:
        return timer.victim_id is None
    return (
        victim.id is not None and timer.victim_id == victim.id
    )  # a victim not yet written has no timer rows


class CaseStore:
    """The queries the pipeline needs, on one open session (one transaction per batch).

    `prefetch` loads in a few queries what a batch's events would otherwise look up one at a time (the
    offenders their identifiers name, with cases, victims and allocations; cases by reference; parked keys;
    notifications already made from them). What it learnt is kept for this transaction only, and every write
    through this store keeps it true, so later lookups answer from memory with the same result a query would
    give. Anything not prefetched is queried as before. Identifiers linked and events marked processed wait in
    memory for `write_pending`, which the transaction calls before it commits.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        # (kind, value) -> its offender, or None: known to belong to nobody (yet).
        self._owners: dict[IdentifierKey, Offender | None] = {}
        # case_ref -> its case, or None: no such case (yet).
        self._cases: dict[str, Case | None] = {}
        # Keys asked about in advance, and those of them that events in the database are parked under.
        self._parked_asked: set[IdentifierKey] = set()
        self._parked_in_db: set[IdentifierKey] = set()
        # Events parked in this transaction (not yet written), by key, in the order parked; those taken since.
        self._parked_here: dict[IdentifierKey, list[ParkedEvent]] = {}
        self._parked_order: dict[ParkedEvent, int] = {}
        self._taken: set[ParkedEvent] = set()  # parked events taken in this transaction (held: no id reuse)
        # Source events asked about in advance, and the ids of the notifications made from them.
        self._notified_sources: set[str] = set()
        self._notification_ids: set[str] = set()
        self._made_here: set[str] = set()  # ids of the notifications added in this transaction
        # case -> its timers (see _timers_of).
        self._timers: dict[Case, CaseTimers] = {}
        # Cases opened in this transaction, and the cases that got a case-level notification in it.
        self._new_cases: set[Case] = set()
        self._case_level_notified: set[Case | None] = set()
        # Ids of cases asked about in advance, and those of them with a case-level notification written.
        self._case_level_asked: set[int] = set()
        self._case_level_written: set[int] = set()
        # person_ref -> its written victims (asked in advance), and the victims added in this transaction.
        self._victims_written: dict[str, list[Victim]] = {}
        self._victims_added: dict[str, list[Victim]] = {}
        # Written in one statement each before the transaction commits (`write_pending`): identifiers linked in
        # it (to their offender object, which may not have an id yet), and the events applied in it.
        self._identifiers_linked: list[tuple[Offender, IdentifierKey]] = []
        self._processed: list[dict] = []
        # Licence condition requests added in this transaction, by case (not yet written: see outstanding_requests).
        self._requests_added: dict[Case, list[LicenceRequest]] = {}

    def prefetch(
        self,
        identifiers: Iterable[IdentifierKey],
        case_refs: Iterable[str],
        parked_keys: Iterable[IdentifierKey],
        source_event_ids: Iterable[str],
        person_refs: Iterable[str] = (),
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Look up a whole batch's identifiers, cases, parked keys, notifications and victims at once. It may be
        asked again for more events in the same transaction: it reads written rows only (nothing pending is
        written first), since what this transaction added is already known to the store.

        `stop` is asked between the larger look-ups; once it says yes, the rest is left out (what is not looked
        up here is looked up when an event asks for it)."""
        with self.session.no_autoflush:
            self._load_victims(
                [ref for ref in dict.fromkeys(person_refs) if ref not in self._victims_written]
            )
            self._load_owners([key for key in dict.fromkeys(identifiers) if key not in self._owners])
            if stop():
                return
            refs = [ref for ref in dict.fromkeys(case_refs) if ref not in self._cases]
            # Most events name their case both ways (an offender identifier and its reference): a case just
            # loaded with its offender need not be read again by reference (measured: 3-4 % of the pipeline).
            case: Case | None  # also the name the set below binds
            for offender in self._owners.values():
                for case in offender.cases if offender is not None else ():
                    self._cases.setdefault(case.case_ref, case)
            self._load_cases([ref for ref in refs if ref not in self._cases])
            if stop():
                return
            case_ids = sorted(
                {case.id for ref in refs if (case := self._cases[ref]) is not None} - self._case_level_asked
            )
            for chunk in _chunks(case_ids):
                self._case_level_written.update(
                    self.session.scalars(
                        select(Notification.case_id)
                        .where(Notification.case_id.in_(chunk), Notification.person_ref.is_(None))
                        .distinct()
                    )
                )
            self._case_level_asked.update(case_ids)
            asked = [key for key in dict.fromkeys(parked_keys) if key not in self._parked_asked]
            for chunk in _chunks(sorted({value for _, value in asked})):
                rows = self.session.execute(
                    select(ParkedEventKey.kind, ParkedEventKey.value).where(ParkedEventKey.value.in_(chunk))
                )
                self._parked_in_db.update((kind, value) for kind, value in rows)
            self._parked_asked.update(asked)
            sources = [
                source for source in dict.fromkeys(source_event_ids) if source not in self._notified_sources
            ]
            for chunk in _chunks(sources):
                self._notification_ids.update(
                    self.session.scalars(
                        select(Notification.notification_id).where(Notification.source_event_id.in_(chunk))
                    )
                )
            self._notified_sources.update(sources)
            if stop():
                return
            # Every known case, its offender's included (registered by reference above).
            self._prefetch_timers(case for case in self._cases.values() if case is not None)

    def _load_owners(self, keys: list[IdentifierKey]) -> None:
        if not keys:
            return
        wanted = set(keys)
        owner_ids: dict[IdentifierKey, int] = {}
        for chunk in _chunks(sorted({value for _, value in keys})):
            rows = self.session.execute(
                select(
                    OffenderIdentifier.kind, OffenderIdentifier.value, OffenderIdentifier.offender_id
                ).where(OffenderIdentifier.value.in_(chunk))
            )
            owner_ids.update(
                {(kind, value): offender_id for kind, value, offender_id in rows if (kind, value) in wanted}
            )
        offenders = self._offenders_by_id(sorted(set(owner_ids.values())))
        for key in keys:
            offender_id = owner_ids.get(key)
            self._owners[key] = offenders.get(offender_id) if offender_id is not None else None

    def _offenders_by_id(self, ids: list[int]) -> dict[int, Offender]:
        """Offenders with what routing reads of them (cases, victims, allocations) in one query (see
        `_load_cases`)."""
        found: dict[int, Offender] = {}
        for chunk in _chunks(ids):
            query = (
                select(Offender)
                .where(Offender.id.in_(chunk))
                .options(
                    joinedload(Offender.cases).joinedload(Case.victims),
                    joinedload(Offender.cases).joinedload(Case.allocations),
                )
            )
            found.update((offender.id, offender) for offender in self.session.scalars(query).unique())
        return found

    def _load_cases(self, refs: list[str]) -> None:
        if not refs:
            return
        # Joined, not one query per relationship: a case has a few victims and one allocation per unit, so the
        # rows multiply little, and each statement costs the ORM about 0.2 ms whatever it returns. Measured
        # 2026-11-24 with `python -m hub.bench_ab` (pipeline alone, chunks of 100): 5 % less CPU per event than
        # selectinload; chunks of 10, 9 %.
        for chunk in _chunks(refs):
            query = (
                select(Case)
                .where(Case.case_ref.in_(chunk))
                .options(joinedload(Case.victims), joinedload(Case.allocations))
            )
            for case in self.session.scalars(query).unique():
                self._cases[case.case_ref] = case
        for ref in refs:
            self._cases.setdefault(ref, None)

    # de-duplication
    def already_processed(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        rows = self.session.scalars(select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(ids)))
        return set(rows)

    def mark_processed(self, event_id: str, event_type: str, source: str, at: datetime) -> None:
        self._processed.append(
            {"event_id": event_id, "event_type": event_type, "source": source, "processed_at": at}
        )

    def write_pending(self) -> None:
        """Write the identifiers linked and the events marked processed in this transaction, one statement each.
        Nothing in the transaction reads them back from the database (identifiers are answered from `_owners`;
        `already_processed` is asked once, before any is marked), and as ORM objects they cost more than the rest
        of an event's writes (identifiers: about a tenth of the pipeline's time, measured 2026-11-23)."""
        if self._identifiers_linked:
            self.session.flush()  # new offenders get their ids
            rows = [
                {"offender_id": offender.id, "kind": kind, "value": value}
                for offender, (kind, value) in self._identifiers_linked
            ]
            self.session.execute(insert(OffenderIdentifier), rows)
            self._identifiers_linked = []
        if self._processed:
            self.session.execute(insert(ProcessedEvent), self._processed)
            self._processed = []

    # identity
    def offenders_for(self, keys: Iterable[IdentifierKey]) -> list[Offender]:
        """Every distinct offender any of these identifiers belongs to, in the order of the keys."""
        keys = list(keys)
        unknown = [key for key in dict.fromkeys(keys) if key not in self._owners]
        if unknown:
            # Identifiers added in this transaction are all known here (link, merge keep the cache), so these
            # are found only among written rows: no need to write everything pending first.
            with self.session.no_autoflush:
                self._load_owners(unknown)
        found: list[Offender] = []
        for key in keys:
            offender = self._owners.get(key)
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
        self._identifiers_linked = [
            (keep if offender is remove else offender, key) for offender, key in self._identifiers_linked
        ]
        for case in list(remove.cases):
            case.offender = keep
        self.session.flush()
        self.session.delete(remove)
        self.session.flush()
        for key, owner in self._owners.items():
            if owner is remove:
                self._owners[key] = keep

    def link(self, offender: Offender, keys: Iterable[IdentifierKey]) -> list[IdentifierKey]:
        """Attach identifiers to an offender; returns the ones that are new (and may unpark events)."""
        known: set[IdentifierKey] | None = None
        added = []
        for key in keys:
            if key in self._owners:
                if self._owners[key] is offender:
                    continue
            else:
                # Not looked up in this transaction: the offender's own identifiers say (one query).
                if known is None:
                    known = {(i.kind, i.value) for i in offender.identifiers}
                if key in known:
                    continue
            self._identifiers_linked.append((offender, key))
            added.append(key)
            self._owners[key] = offender
        # Written by `write_pending`, not as ORM objects: the identifier cache answers for them until then (and
        # an offender's `identifiers` collection does not hold them: every key linked here is in the cache).
        return added

    def identifiers_of(self, offender: Offender) -> dict[str, str]:
        """The offender's identifiers by kind, written or linked in this transaction; the first linked of a kind
        (an alias a merge kept comes later)."""
        found: dict[str, str] = {}
        if offender.id is not None:
            with (
                self.session.no_autoflush
            ):  # written rows only: what is linked here is in _identifiers_linked
                for identifier in sorted(offender.identifiers, key=lambda i: i.id):
                    found.setdefault(identifier.kind, identifier.value)
        for linked, (kind, value) in self._identifiers_linked:
            if linked is offender:
                found.setdefault(kind, value)
        return found

    def new_offender(self) -> Offender:
        offender = Offender()
        self.session.add(offender)
        return offender

    # cases
    def case_by_ref(self, case_ref: str) -> Case | None:
        if case_ref not in self._cases:
            with self.session.no_autoflush:  # cases opened in this transaction are known here (add_case)
                self._load_cases([case_ref])
        return self._cases[case_ref]

    def add_case(self, case: Case) -> None:
        self.session.add(case)
        self._cases[case.case_ref] = case
        self._timers[case] = CaseTimers()  # a new case has no timers yet
        self._new_cases.add(case)

    def may_have_case_level_notifications(self, case: Case) -> bool:
        """False only when the case is known to have no case-level notification, written or not: opened in this
        transaction, or asked about in advance, and none made for it since."""
        if case in self._case_level_notified:
            return True
        if case in self._new_cases:
            return False
        return case.id not in self._case_level_asked or case.id in self._case_level_written

    def _load_victims(self, person_refs: list[str]) -> None:
        for ref in person_refs:
            self._victims_written[ref] = []
        for chunk in _chunks(person_refs):
            # Written rows only: victims added in this transaction are in _victims_added (no flush needed).
            with self.session.no_autoflush:
                for victim in self.session.scalars(select(Victim).where(Victim.person_ref.in_(chunk))):
                    self._victims_written[victim.person_ref].append(victim)

    def add_victim(self, victim: Victim) -> None:
        self.session.add(victim)
        self._victims_added.setdefault(victim.person_ref, []).append(victim)

    def victims_by_person(self, person_ref: str) -> list[Victim]:
        """Every victim record of one person (one per case they are a victim in)."""
        if person_ref not in self._victims_written:
            self._load_victims([person_ref])
        # dict.fromkeys: a victim added here and flushed since can also be among the rows read afterwards.
        return list(
            dict.fromkeys([*self._victims_written[person_ref], *self._victims_added.get(person_ref, [])])
        )

    # timers
    def _timers_of(self, case: Case) -> CaseTimers:
        """Every timer of a case: loaded once per transaction, then kept current (timers start only through
        `start_timer`; a new case has none)."""
        if case not in self._timers:
            self._prefetch_timers([case])
        return self._timers[case]

    def _prefetch_timers(self, cases: Iterable[Case]) -> None:
        unknown = [case for case in cases if case not in self._timers]
        for case in unknown:
            self._timers[case] = CaseTimers()  # filled below if the case is written; a case not yet has none
        written = {case.id: case for case in unknown if case.id is not None}
        for chunk in _chunks(sorted(written)):
            self._load_timers({case_id: written[case_id] for case_id in chunk})

    def _load_timers(self, cases: dict[int, Case]) -> None:
        # Timers started in this transaction went through start_timer, which keeps these lists: none can be
        # pending for a case not asked about before, so written rows are all there is.
        with self.session.no_autoflush:
            for timer in self.session.scalars(select(Timer).where(Timer.case_id.in_(cases), *TIMER_RUNNING)):
                self._timers[cases[timer.case_id]].running.append(timer)
            finished = self.session.execute(
                select(Timer.case_id, Timer.kind, Timer.cause, Timer.victim_id).where(
                    Timer.case_id.in_(cases), ~and_(*TIMER_RUNNING)
                )
            )
            for case_id, kind, cause, victim_id in finished:
                self._timers[cases[case_id]].finished.add((kind, cause, victim_id))

    def start_timer(self, timer: Timer) -> None:
        """Start a timer unless the same one (kind, case, victim, cause) was ever started: a running one gets
        the new due time; a finished one stays finished."""
        timers = self._timers_of(timer.case)
        existing = next(
            (
                t
                for t in timers.running
                if t.kind == timer.kind and t.cause == timer.cause and _same_victim(t, timer.victim)
            ),
            None,
        )
        if existing is None:
            if not timers.finished_for(timer.kind, timer.victim, timer.cause):
                self.session.add(timer)
                timers.running.append(timer)
        elif existing.stopped_at is None and existing.fired_at is None:
            existing.due_at = timer.due_at

    def has_timer(self, case: Case, victim: Victim | None, kind: str) -> bool:
        """Whether a timer of this kind was ever started for this victim (None: for the case itself)."""
        timers = self._timers_of(case)
        return any(t.kind == kind and _same_victim(t, victim) for t in timers.running) or timers.finished_for(
            kind, victim
        )

    def stop_timers(self, case: Case, victim: Victim | None, kinds: list[str], at: datetime) -> None:
        """Stop the running timers of these kinds (of one victim, or of everyone on the case)."""
        for timer in self._timers_of(case).running:
            if (
                timer.kind in kinds
                and timer.stopped_at is None
                and timer.fired_at is None
                and (victim is None or _same_victim(timer, victim))
            ):
                timer.stopped_at = at

    def stop_timers_caused_by(self, cause: str, at: datetime) -> None:
        self.session.execute(
            update(Timer)
            .where(Timer.cause == cause, Timer.stopped_at.is_(None))
            .values(stopped_at=at)
            .execution_options(synchronize_session=_SYNC)
        )

    def due_timers(self, now: datetime, limit: int = 500) -> list[Timer]:
        return list(
            self.session.scalars(
                select(Timer).where(Timer.due_at <= now, *TIMER_RUNNING).order_by(Timer.due_at).limit(limit)
            )
        )

    # parked events
    def is_parked(self, event_id: str) -> bool:
        return self.session.scalar(select(ParkedEvent.id).where(ParkedEvent.event_id == event_id)) is not None

    def park(self, parked: ParkedEvent, keys: Iterable[IdentifierKey]) -> None:
        keys = list(keys)
        parked.keys = [ParkedEventKey(kind=kind, value=value) for kind, value in keys]
        self.session.add(parked)
        self._parked_order[parked] = len(self._parked_order)
        for key in dict.fromkeys(keys):
            self._parked_here.setdefault(key, []).append(parked)

    def parked(self, older_than: datetime | None = None) -> list[ParkedEvent]:
        query = select(ParkedEvent).order_by(ParkedEvent.parked_at)
        if older_than is not None:
            query = query.where(ParkedEvent.parked_at <= older_than)
        return list(self.session.scalars(query.options(selectinload(ParkedEvent.keys))))

    def parked_summary(self) -> tuple[int, datetime | None]:
        """How many events are parked, and when the oldest was: what the gauges show, without loading them."""
        count, oldest = self.session.execute(select(func.count(), func.min(ParkedEvent.parked_at))).one()
        return count, oldest

    def take_parked(self, keys: Iterable[IdentifierKey]) -> list[ParkedEvent]:
        """Parked events waiting on any of these identifiers, removed from the park, in the order published."""
        keys = list(dict.fromkeys(keys))
        found: dict[int, ParkedEvent] = {}
        # Parked in this transaction: still in memory only.
        for key in keys:
            for row in self._parked_here.get(key, ()):
                if row not in self._taken:
                    found[id(row)] = row
        # Parked before: in the database, unless asked in advance and nothing is parked under it.
        asked = {key for key in keys if key not in self._parked_asked or key in self._parked_in_db}
        if asked:
            query = (
                select(ParkedEvent, ParkedEventKey.kind, ParkedEventKey.value)
                .join(ParkedEventKey)
                .where(ParkedEventKey.value.in_(sorted({value for _, value in asked})))
            )
            # Written rows only (what this transaction parked is above), so nothing needs writing first.
            with self.session.no_autoflush:
                for row, kind, value in self.session.execute(query):
                    if (kind, value) in asked and row not in self._taken:
                        found[id(row)] = row
        parked = sorted(
            found.values(),
            key=lambda p: (
                (p.published_at, 0, p.id) if p.id is not None else (p.published_at, 1, self._parked_order[p])
            ),
        )
        written = [row.id for row in parked if row.id is not None]
        if written:
            # Deleted at once, on the transaction's connection: an ORM delete would first load each event's keys
            # and write everything pending, and an event re-parked in this transaction must not meet its old row.
            connection = self.session.connection()
            for chunk in _chunks(written):
                connection.execute(delete(ParkedEventKey).where(ParkedEventKey.parked_event_id.in_(chunk)))
                connection.execute(delete(ParkedEvent).where(ParkedEvent.id.in_(chunk)))
        for row in parked:
            self._taken.add(row)
            self.session.expunge(row)  # gone from the park; what it holds is still readable
        return parked

    # outbox
    def add_notification(self, notification: Notification) -> bool:
        """Keep a notification unless one with the same id exists; True when it is new."""
        identity = notification.notification_id
        if notification.source_event_id in self._notified_sources:
            # Asked in advance: a notification's id is derived from its cause, which fixes its source event, so
            # every existing notification with this id is among those made from that source event.
            if identity in self._notification_ids:
                return False
        elif identity in self._notification_ids:
            return False
        else:
            # Every notification added in this transaction is in _notification_ids: only written rows remain.
            with self.session.no_autoflush:
                if self.session.get(Notification, identity) is not None:
                    return False
        self.session.add(notification)
        self._notification_ids.add(identity)
        self._made_here.add(identity)
        if notification.person_ref is None:
            self._case_level_notified.add(notification.case)
        return True

    def made_here(self, notification: Notification) -> bool:
        """Whether the notification was made in this transaction (so no queue can have it yet)."""
        return notification.notification_id in self._made_here

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
                    Notification.payload.is_not(None),  # dropped by the retention schedule: nothing to send
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
        for chunk in _chunks(notification_ids):
            self.session.execute(
                update(Notification).where(Notification.notification_id.in_(chunk)).values(published_at=at)
            )

    # licence condition requests (docs/domain.md section 8.2)
    def add_licence_requests(self, case: Case, requests: list[LicenceRequest]) -> None:
        self.session.add_all(requests)
        self._requests_added.setdefault(case, []).extend(requests)

    def outstanding_requests(self, case: Case) -> list[LicenceRequest]:
        """The case's requests no decision has reconciled yet (and whose text was not erased), oldest first."""
        written: list[LicenceRequest] = []
        if case.id is not None:
            with self.session.no_autoflush:  # those added in this transaction are in _requests_added
                written = list(
                    self.session.scalars(
                        select(LicenceRequest)
                        .where(LicenceRequest.case_id == case.id, LicenceRequest.outcome.is_(None))
                        .order_by(LicenceRequest.id)
                    )
                )
        added = self._requests_added.get(case, [])
        found = list(
            dict.fromkeys([*written, *added])
        )  # one added here and flushed since is among the rows too
        return [r for r in found if r.outcome is None and r.text is not None]

    # the outbound outbox: records for other agencies
    def add_outbound(self, record: OutboxRecord) -> None:
        self.session.add(record)

    def unpublished_outbound(self, settled_before: datetime, limit: int = 1000) -> list[OutboxRecord]:
        """Outbound records to put on their topics: not published, and left unconfirmed since before
        `settled_before` (a batch still publishing its own is left alone)."""
        return list(
            self.session.scalars(
                select(OutboxRecord)
                .where(
                    OutboxRecord.published_at.is_(None),
                    OutboxRecord.payload.is_not(None),  # dropped by erasure or retention: nothing to send
                    OutboxRecord.created_at <= settled_before,
                )
                .order_by(OutboxRecord.created_at, OutboxRecord.id)
                .limit(limit)
            )
        )

    def mark_outbound_published(self, record_ids: list[int], at: datetime) -> None:
        for chunk in _chunks(record_ids):
            self.session.execute(
                update(OutboxRecord).where(OutboxRecord.id.in_(chunk)).values(published_at=at)
            )
