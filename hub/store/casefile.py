"""What one transaction knows of the case store, and what it changed: the state the pipeline's rules decide on.

`hub.store.load` fills a CaseFile with everything a chunk of events will ask about, in a fixed number of queries;
the rules then read and change plain records (`hub.store.records`) through it, in memory; `hub.store.write` writes
what changed, one statement per table and kind. Events later in the chunk see what earlier ones did, because
every change goes through these indexes.

A question about something the load step did not read (rare: an event released from the park names a new
offender, say) is answered by loading it then (`Loader.load` with just that need): never wrong, only slower, and
counted in `fallback_loads` so a benchmark can show it stays at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol

from hub.errors import IdentifierKey
from hub.store.records import (
    Allocation,
    Case,
    LicenceRequest,
    Notification,
    Offender,
    OutboxRecord,
    ParkedEvent,
    Timer,
    Victim,
)

# A timer that has stopped or fired is never changed again; only what it was for matters: (kind, cause, victim id).
FinishedTimer = tuple[str, str, int | None]


@dataclass(frozen=True)
class Needs:
    """What a chunk's events will ask the case store about."""

    identifiers: frozenset[IdentifierKey] = frozenset()
    case_refs: frozenset[str] = frozenset()
    person_refs: frozenset[str] = frozenset()  # every victim record of these people (an address change)
    event_ids: frozenset[str] = frozenset()  # applied already? notifications made from them?
    parked_keys: frozenset[IdentifierKey] = frozenset()  # events parked under these, to release
    notification_ids: frozenset[str] = frozenset()  # notifications acknowledged
    cancelled_event_ids: frozenset[str] = frozenset()  # notifications made from a release being cancelled
    referred_case_refs: frozenset[str] = frozenset()  # cases gaining a victim: their case-level notifications
    case_ids: frozenset[int] = frozenset()


class Loader(Protocol):
    def load(self, casefile: CaseFile, needs: Needs, stop: Callable[[], bool] = ...) -> bool: ...


@dataclass
class CaseTimers:
    """One case's timers: the running ones as records (they may be stopped or moved), the finished ones as keys
    only, since a case keeps every timer it ever had."""

    running: list[Timer] = field(default_factory=list)
    finished: set[FinishedTimer] = field(default_factory=set)

    def finished_for(self, kind: str, victim: Victim | None, cause: str | None = None) -> bool:
        if victim is not None and victim.id is None:
            return False  # a victim not yet written has no timer rows
        victim_id = victim.id if victim is not None else None
        return any(
            k == kind and v == victim_id and (cause is None or c == cause) for k, c, v in self.finished
        )


@dataclass
class Changes:
    """What a transaction adds, moves and removes besides the changed columns of the records it read."""

    offenders: list[Offender] = field(default_factory=list)
    identifiers: list[tuple[Offender, IdentifierKey]] = field(default_factory=list)
    merged: list[tuple[Offender, Offender]] = field(default_factory=list)  # (kept, removed), both written
    cases: list[Case] = field(default_factory=list)
    victims: list[Victim] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    timers_stopped_by_cause: list[tuple[str, datetime]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    outbound: list[OutboxRecord] = field(default_factory=list)
    requests: list[LicenceRequest] = field(default_factory=list)
    parked: list[ParkedEvent] = field(default_factory=list)
    unparked_ids: list[int] = field(default_factory=list)  # written parked events taken from the park
    processed: list[dict[str, Any]] = field(default_factory=list)


_CHANGEABLE: dict[type, attrgetter[Any]] = {
    kind: attrgetter(*kind.CHANGEABLE)
    for kind in (Case, Victim, Allocation, Timer, Notification, LicenceRequest)
}


class CaseFile:
    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.changes = Changes()
        self.fallback_loads = 0
        # What was asked of the database, so that a second load asks only about what is new.
        self.asked = Needs()
        # (kind, value) -> its offender, or None: known to belong to nobody (yet).
        self.owners: dict[IdentifierKey, Offender | None] = {}
        self.offenders: dict[int, Offender] = {}
        self.cases_by_ref: dict[str, Case | None] = {}
        self.cases_by_id: dict[int, Case] = {}
        self.victims_by_id: dict[int, Victim] = {}
        self.victims_of_person: dict[str, list[Victim]] = {}  # person_ref -> every victim record (asked ones)
        self.timers: dict[Case, CaseTimers] = {}
        self.requests: dict[Case, list[LicenceRequest]] = {}  # outstanding, read or added
        self.processed: set[str] = set()  # asked event ids applied before
        self.notification_ids: set[str] = set()  # of notifications made from asked event ids, and made here
        self.notified_sources: set[str] = set()  # event ids whose notifications are all in notification_ids
        self.notifications: dict[str, Notification] = {}  # read in full, or made here
        # Case-level event notifications (what a victim referred late catches up on): read, and made here.
        self.case_level: dict[Case, list[Notification]] = {}
        self._case_level_made: dict[Case, list[Notification]] = {}
        self._parked: dict[IdentifierKey, list[ParkedEvent]] = {}  # by key: read, or parked here
        self.parked_by_id: dict[int, ParkedEvent] = {}
        self._taken: set[ParkedEvent] = set()
        self._made_here: set[str] = set()
        self._snapshots: dict[object, tuple[Any, ...]] = {}

    # ---- filled by the loader
    def remember(self, record: Case | Victim | Allocation | Timer | Notification | LicenceRequest) -> None:
        """Keep what a record read from the database holds, to write only the columns changed since."""
        self._snapshots[record] = _CHANGEABLE[type(record)](record)

    def unlink(self) -> None:
        """Once the transaction is written: drop the links from offenders down to their cases and from cases down
        to their victims and allocations, and let go of every record held here.

        The records link both ways, so a transaction's records form cycles that only the cycle collector frees.
        Those that lived through one of its young collections during the transaction were moved to the oldest
        generation, and in a long drain the full collections that then freed them paused the worker for up to a
        second, urgent work included. Unlinked, the records are freed as soon as nothing refers to them: the
        notifications and outbound records handed on keep only what they point up to (their case, its offender)."""
        offenders = [*self.offenders.values(), *self.changes.offenders]
        offenders += [offender for pair in self.changes.merged for offender in pair]
        cases = {*self.cases_by_id.values(), *self.changes.cases}
        cases.update(case for offender in offenders for case in offender.cases)
        for case in cases:
            case.victims.clear()
            case.allocations.clear()
        for offender in offenders:
            offender.cases.clear()
        for index in (
            self.owners,
            self.offenders,
            self.cases_by_ref,
            self.cases_by_id,
            self.victims_by_id,
            self.victims_of_person,
            self.timers,
            self.requests,
            self.notifications,
            self.case_level,
            self._case_level_made,
            self._parked,
            self.parked_by_id,
            self._snapshots,
        ):
            index.clear()
        self.changes = Changes()

    def changed(self) -> Iterable[tuple[object, list[str]]]:
        """Each record read that changed, with the names of the columns that did."""
        for record, before in self._snapshots.items():
            names = type(record).CHANGEABLE  # type: ignore[attr-defined]
            now = _CHANGEABLE[type(record)](record)
            if len(names) == 1:
                before, now = (before,), (now,)
            if now != before:
                yield record, [name for name, old, new in zip(names, before, now, strict=True) if old != new]

    def add_read_case(self, case: Case) -> None:
        self.cases_by_ref[case.case_ref] = case
        self.cases_by_id[case.id] = case  # type: ignore[index]
        self.timers.setdefault(case, CaseTimers())
        self.requests.setdefault(case, [])
        self.remember(case)

    def add_read_victims_of(self, person_ref: str, victims: list[Victim]) -> None:
        self.victims_of_person[person_ref] = victims

    def add_read_case_level(self, case: Case, notifications: list[Notification]) -> None:
        self.case_level[case] = notifications

    def add_read_parked(self, parked: ParkedEvent, key: IdentifierKey) -> None:
        found = self._parked.setdefault(key, [])
        if parked not in found:
            found.append(parked)

    def _load(self, **needs: Iterable[Any]) -> None:
        self.fallback_loads += 1
        self.loader.load(self, Needs(**{name: frozenset(values) for name, values in needs.items()}))

    # ---- processed events
    def mark_processed(self, event_id: str, event_type: str, source: str, at: datetime) -> None:
        self.changes.processed.append(
            {"event_id": event_id, "event_type": event_type, "source": source, "processed_at": at}
        )

    # ---- identity
    def offenders_for(self, keys: Iterable[IdentifierKey]) -> list[Offender]:
        """Every distinct offender any of these identifiers belongs to, in the order of the keys."""
        keys = list(keys)
        unknown = [key for key in keys if key not in self.owners]
        if unknown:
            self._load(identifiers=unknown)
        found: list[Offender] = []
        for key in keys:
            offender = self.owners.get(key)
            if offender is not None and offender not in found:
                found.append(offender)
        return found

    def new_offender(self) -> Offender:
        offender = Offender()
        self.changes.offenders.append(offender)
        return offender

    def link(self, offender: Offender, keys: Iterable[IdentifierKey]) -> list[IdentifierKey]:
        """Attach identifiers to an offender; returns the ones that are new (and may unpark events)."""
        added = []
        for key in keys:
            if key not in self.owners:
                self.offenders_for([key])
            if self.owners[key] is offender:
                continue
            self.changes.identifiers.append((offender, key))
            self.owners[key] = offender
            added.append(key)
        return added

    def merge_offenders(self, keep: Offender, remove: Offender) -> None:
        """Every identifier and case of `remove` moves to `keep`: a merge re-keys, it never copies."""
        keep.identifiers.extend(remove.identifiers)
        for case in remove.cases:
            case.offender = keep
        keep.cases.extend(remove.cases)
        remove.cases = []
        self.changes.identifiers = [
            (keep if offender is remove else offender, key) for offender, key in self.changes.identifiers
        ]
        for key, owner in self.owners.items():
            if owner is remove:
                self.owners[key] = keep
        if remove.id is None:
            self.changes.offenders.remove(remove)
        else:
            self.changes.merged.append((keep, remove))

    def identifiers_of(self, offender: Offender) -> dict[str, str]:
        """The offender's identifiers by kind, the first linked of a kind (an alias a merge kept comes later)."""
        found: dict[str, str] = {}
        for kind, value in offender.identifiers:
            found.setdefault(kind, value)
        for linked, (kind, value) in self.changes.identifiers:
            if linked is offender:
                found.setdefault(kind, value)
        return found

    # ---- cases and victims
    def case_by_ref(self, case_ref: str) -> Case | None:
        if case_ref not in self.cases_by_ref:
            self._load(case_refs=[case_ref])
        return self.cases_by_ref.get(case_ref)

    def case_by_id(self, case_id: int) -> Case:
        if case_id not in self.cases_by_id:
            self._load(case_ids=[case_id])
        return self.cases_by_id[case_id]

    def add_case(self, case: Case) -> None:
        self.changes.cases.append(case)
        case.offender.cases.append(case)
        self.cases_by_ref[case.case_ref] = case
        self.timers[case] = CaseTimers()
        self.requests[case] = []
        self.case_level[case] = []

    def add_victim(self, victim: Victim) -> None:
        self.changes.victims.append(victim)
        victim.case.victims.append(victim)
        if victim.person_ref in self.victims_of_person:
            self.victims_of_person[victim.person_ref].append(victim)

    def victims_by_person(self, person_ref: str) -> list[Victim]:
        """Every victim record of one person (one per case they are a victim in)."""
        if person_ref not in self.victims_of_person:
            self._load(person_refs=[person_ref])
        return list(self.victims_of_person[person_ref])

    def add_allocation(self, allocation: Allocation) -> None:
        self.changes.allocations.append(allocation)
        allocation.case.allocations.append(allocation)

    # ---- timers
    def _timers_of(self, case: Case) -> CaseTimers:
        if case not in self.timers:
            self._load(case_ids=[case.id])
        return self.timers[case]

    def start_timer(self, timer: Timer) -> None:
        """Start a timer unless the same one (kind, case, victim, cause) was ever started: a running one gets the
        new due time; a finished one stays finished."""
        timers = self._timers_of(timer.case)
        existing = next(
            (
                t
                for t in timers.running
                if t.kind == timer.kind and t.cause == timer.cause and t.victim is timer.victim
            ),
            None,
        )
        if existing is None:
            if not timers.finished_for(timer.kind, timer.victim, timer.cause):
                self.changes.timers.append(timer)
                timers.running.append(timer)
        elif existing.running:
            existing.due_at = timer.due_at

    def has_timer(self, case: Case, victim: Victim | None, kind: str) -> bool:
        """Whether a timer of this kind was ever started for this victim (None: for the case itself)."""
        timers = self._timers_of(case)
        return any(t.kind == kind and t.victim is victim for t in timers.running) or timers.finished_for(
            kind, victim
        )

    def stop_timers(self, case: Case, victim: Victim | None, kinds: list[str], at: datetime) -> None:
        """Stop the running timers of these kinds (of one victim, or of everyone on the case)."""
        for timer in self._timers_of(case).running:
            if timer.kind in kinds and timer.running and (victim is None or timer.victim is victim):
                timer.stopped_at = at

    def stop_timers_caused_by(self, cause: str, at: datetime) -> None:
        """Stop every running timer this notification started, read in this transaction or not."""
        for timers in self.timers.values():
            for timer in timers.running:
                if timer.cause == cause and timer.stopped_at is None:
                    timer.stopped_at = at
        self.changes.timers_stopped_by_cause.append((cause, at))

    # ---- parked events
    def park(self, parked: ParkedEvent) -> None:
        self.changes.parked.append(parked)
        for key in dict.fromkeys(parked.keys):
            self._parked.setdefault(key, []).append(parked)

    def take_parked(self, keys: Iterable[IdentifierKey]) -> list[ParkedEvent]:
        """Parked events waiting on any of these identifiers, removed from the park, in the order published."""
        keys = list(dict.fromkeys(keys))
        unknown = [key for key in keys if key not in self.asked.parked_keys]
        if unknown:
            self._load(parked_keys=unknown)
        found: dict[ParkedEvent, None] = {}
        for key in keys:
            for parked in self._parked.get(key, ()):
                if parked not in self._taken:
                    found[parked] = None
        order = {parked: index for index, parked in enumerate(self.changes.parked)}
        taken = sorted(
            found,
            key=lambda p: (p.published_at, 0, p.id) if p.id is not None else (p.published_at, 1, order[p]),
        )
        for parked in taken:
            self._taken.add(parked)
            if parked.id is None:
                self.changes.parked.remove(parked)
            else:
                self.changes.unparked_ids.append(parked.id)
        return taken

    # ---- notifications
    def add_notification(self, notification: Notification) -> bool:
        """Keep a notification unless one with the same id exists; True when it is new."""
        identity, source = notification.notification_id, notification.source_event_id
        if identity not in self.notification_ids:
            # A notification's id is derived from its cause, which fixes its source event: the notifications made
            # from that source hold every one it could clash with.
            if source is not None:
                if source not in self.notified_sources:
                    self._load(event_ids=[source])
            elif identity not in self.asked.notification_ids:
                self._load(notification_ids=[identity])
        if identity in self.notification_ids:
            return False
        self.changes.notifications.append(notification)
        self.notification_ids.add(identity)
        self.notifications[identity] = notification
        self._made_here.add(identity)
        if notification.person_ref is None and notification.case is not None:
            self._case_level_made.setdefault(notification.case, []).append(notification)
        return True

    def made_here(self, notification: Notification) -> bool:
        """Whether the notification was made in this transaction (so no queue can have it yet)."""
        return notification.notification_id in self._made_here

    def notification(self, notification_id: str) -> Notification | None:
        if notification_id not in self.notifications and notification_id not in self.asked.notification_ids:
            self._load(notification_ids=[notification_id])
        return self.notifications.get(notification_id)

    def notifications_from(self, source_event_id: str) -> list[Notification]:
        if source_event_id not in self.asked.cancelled_event_ids:
            self._load(cancelled_event_ids=[source_event_id])
        return [n for n in self.notifications.values() if n.source_event_id == source_event_id]

    def case_level_notifications(self, case: Case) -> list[Notification]:
        """The case's case-level event notifications not withdrawn (what a victim referred late catches up on)."""
        if case not in self.case_level:
            self._load(referred_case_refs=[case.case_ref])
        made = self._case_level_made.get(case, [])
        return [n for n in [*self.case_level[case], *made] if n.kind == "event" and n.withdrawn_at is None]

    # ---- licence condition requests
    def add_licence_requests(self, case: Case, requests: list[LicenceRequest]) -> None:
        self.changes.requests.extend(requests)
        self.requests.setdefault(case, []).extend(requests)

    def outstanding_requests(self, case: Case) -> list[LicenceRequest]:
        """The case's requests no decision has reconciled yet (and whose text was not erased), oldest first."""
        if case not in self.requests:
            self._load(case_ids=[case.id])
        return [r for r in self.requests[case] if r.outcome is None and r.text is not None]

    # ---- the outbound outbox
    def add_outbound(self, record: OutboxRecord) -> None:
        self.changes.outbound.append(record)
