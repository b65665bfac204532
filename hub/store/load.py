"""The load step: everything a chunk of events will ask the case store about, in a fixed number of queries
whatever the chunk's size, read into a CaseFile as plain records.

An offender is read whole or not at all: with every case, and each case with its victims, allocations, timers and
outstanding licence requests, so that a rule walking from an offender to their cases' victims never meets a gap.
A row the CaseFile already holds is not read again: what this transaction changed stays as it changed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import BindParameter, Connection, Row, and_, bindparam, or_, select

from hub.errors import IdentifierKey
from hub.store.casefile import CaseFile, Needs
from hub.store.models import (
    ALLOCATIONS,
    CASES,
    IDENTIFIERS,
    NOTIFICATIONS,
    PARKED,
    PARKED_KEYS,
    PROCESSED,
    REQUESTS,
    TIMER_RUNNING,
    TIMERS,
    VICTIMS,
)
from hub.store.records import (
    Allocation,
    Case,
    LicenceRequest,
    Notification,
    Offender,
    ParkedEvent,
    ParkedKey,
    Timer,
    Victim,
)

# Offenders read at a time when the load step may be asked to stop (`StoreLoader.load`): urgent work waits for one
# group's reading at most, and each group costs six queries more. Groups of 25 made a 100-event chunk's load step
# about 1.3 times as long on PostgreSQL, where each query is a round trip; groups of 50 cost a few per cent.
OFFENDERS_AT_ONCE = 50
# Most values in one IN (...) list: well inside SQLite's and PostgreSQL's limits on bound parameters.
IN_CHUNK = 1000

T = TypeVar("T")


def chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _among(name: str) -> BindParameter[Any]:
    """A list of values bound at execution: the statement is built and compiled once, whatever the list's size."""
    return bindparam(name, expanding=True)


# The load step's statements, built once: building them per load cost more than running them.
APPLIED_AMONG = select(PROCESSED.c.event_id).where(PROCESSED.c.event_id.in_(_among("values")))
NOTIFICATIONS_NAMED = select(NOTIFICATIONS).where(
    or_(
        NOTIFICATIONS.c.notification_id.in_(_among("ids")),
        NOTIFICATIONS.c.source_event_id.in_(_among("sources")),
    )
)
NOTIFICATION_IDS_FROM = select(NOTIFICATIONS.c.notification_id).where(
    NOTIFICATIONS.c.source_event_id.in_(_among("values"))
)
OWNERS_AMONG = select(IDENTIFIERS.c.kind, IDENTIFIERS.c.value, IDENTIFIERS.c.offender_id).where(
    IDENTIFIERS.c.value.in_(_among("values"))
)
VICTIMS_OF_PEOPLE = select(VICTIMS).where(VICTIMS.c.person_ref.in_(_among("values")))
CASES_NAMED = select(CASES).where(
    or_(
        CASES.c.offender_id.in_(_among("offenders")),
        CASES.c.case_ref.in_(_among("refs")),
        CASES.c.id.in_(_among("ids")),
    )
)
VICTIMS_OF_CASES = select(VICTIMS).where(VICTIMS.c.case_id.in_(_among("values"))).order_by(VICTIMS.c.id)
ALLOCATIONS_OF_CASES = select(ALLOCATIONS).where(ALLOCATIONS.c.case_id.in_(_among("values")))
RUNNING_TIMERS_OF_CASES = select(TIMERS).where(TIMERS.c.case_id.in_(_among("values")), *TIMER_RUNNING)
# A finished timer is never changed again: what it was for is all the rules ask, so its times are not read.
FINISHED_TIMERS_OF_CASES = select(TIMERS.c.case_id, TIMERS.c.kind, TIMERS.c.cause, TIMERS.c.victim_id).where(
    TIMERS.c.case_id.in_(_among("values")), ~and_(*TIMER_RUNNING)
)
IDENTIFIERS_OF_OFFENDERS = (
    select(IDENTIFIERS.c.offender_id, IDENTIFIERS.c.kind, IDENTIFIERS.c.value)
    .where(IDENTIFIERS.c.offender_id.in_(_among("values")))
    .order_by(IDENTIFIERS.c.id)
)
OUTSTANDING_REQUESTS_OF_CASES = (
    select(REQUESTS)
    .where(REQUESTS.c.case_id.in_(_among("values")), REQUESTS.c.outcome.is_(None))
    .order_by(REQUESTS.c.id)
)
CASE_LEVEL_NOTIFICATIONS_OF_CASES = select(NOTIFICATIONS).where(
    NOTIFICATIONS.c.case_id.in_(_among("values")),
    NOTIFICATIONS.c.person_ref.is_(None),
    NOTIFICATIONS.c.kind == "event",
    NOTIFICATIONS.c.withdrawn_at.is_(None),
)
PARKED_UNDER = (
    select(PARKED, PARKED_KEYS.c.kind.label("key_kind"), PARKED_KEYS.c.value.label("key_value"))
    .join(PARKED_KEYS, PARKED_KEYS.c.parked_event_id == PARKED.c.id)
    .where(PARKED_KEYS.c.value.in_(_among("values")))
)


class StoreLoader:
    """Reads into a CaseFile on the transaction's connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def load(self, casefile: CaseFile, needs: Needs, stop: Callable[[], bool] | None = None) -> bool:
        """Read what `needs` names and the CaseFile does not hold yet. `stop` is asked between groups of queries,
        and between groups of OFFENDERS_AT_ONCE offenders; once it says yes the rest is left out and False comes
        back (what is not read now is read when asked)."""
        self._processed(casefile, needs.event_ids - casefile.asked.event_ids)
        if stop is not None and stop():
            return False
        case_ids = {case_id for case_id in needs.case_ids if case_id is not None}
        case_ids |= self._notifications(
            casefile,
            needs.notification_ids - casefile.asked.notification_ids,
            needs.cancelled_event_ids - casefile.asked.cancelled_event_ids,
        )
        whole = self._offenders(
            casefile,
            [key for key in needs.identifiers if key not in casefile.owners],
            [ref for ref in needs.case_refs | needs.referred_case_refs if ref not in casefile.cases_by_ref],
            [ref for ref in needs.person_refs if ref not in casefile.victims_of_person],
            [case_id for case_id in case_ids if case_id not in casefile.cases_by_id],
            stop,
        )
        if not whole or (stop is not None and stop()):
            return False
        sources = self._case_level(casefile, needs.referred_case_refs)
        self._notification_ids(casefile, (needs.event_ids | sources) - casefile.notified_sources)
        if stop is not None and stop():
            return False
        self._parked(casefile, needs.parked_keys - casefile.asked.parked_keys)
        return True

    def _rows(self, statement: Any, values: Iterable[Any]) -> Iterator[Any]:
        """The rows of a statement over a list of values, a chunk of them at a time."""
        for chunk in chunks(values):
            yield from self.connection.execute(statement, {"values": chunk}).all()

    # ---- applied events
    def _processed(self, casefile: CaseFile, event_ids: frozenset[str]) -> None:
        casefile.processed.update(event_id for (event_id,) in self._rows(APPLIED_AMONG, event_ids))
        casefile.asked = _with(casefile.asked, event_ids=event_ids)

    # ---- notifications asked about by id (acknowledgements) or by source (cancelled releases)
    def _notifications(self, casefile: CaseFile, ids: frozenset[str], cancelled: frozenset[str]) -> set[int]:
        case_ids: set[int] = set()
        if ids or cancelled:
            for chunk in chunks([*ids, *cancelled]):
                for row in self.connection.execute(NOTIFICATIONS_NAMED, {"ids": chunk, "sources": chunk}):
                    if row.notification_id in ids or row.source_event_id in cancelled:
                        notification = self._notification(casefile, row)
                        if notification.case_id is not None:
                            case_ids.add(notification.case_id)
        casefile.asked = _with(casefile.asked, notification_ids=ids, cancelled_event_ids=cancelled)
        return case_ids

    def _notification(self, casefile: CaseFile, row: Row[Any]) -> Notification:
        known = casefile.notifications.get(row.notification_id)
        if known is not None:
            return known
        notification = notification_from_row(row)
        notification.case = casefile.cases_by_id.get(row.case_id) if row.case_id is not None else None
        casefile.notifications[notification.notification_id] = notification
        casefile.notification_ids.add(notification.notification_id)
        casefile.remember(notification)
        return notification

    def _notification_ids(self, casefile: CaseFile, sources: frozenset[str]) -> None:
        casefile.notification_ids.update(
            identity for (identity,) in self._rows(NOTIFICATION_IDS_FROM, sources)
        )
        casefile.notified_sources.update(sources)

    # ---- offenders, whole
    def _offenders(
        self,
        casefile: CaseFile,
        keys: list[IdentifierKey],
        case_refs: list[str],
        person_refs: list[str],
        case_ids: list[int],
        stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Read the offenders these keys, references and ids lead to, whole. With `stop`, they are read in groups
        and `stop` is asked between them: once it says yes, False comes back with only whole offenders read, and
        the keys and references not yet noted as asked (so they are read again when asked)."""
        owner_ids: dict[IdentifierKey, int] = {}
        wanted = set(keys)
        for kind, value, offender_id in self._rows(OWNERS_AMONG, sorted({value for _, value in keys})):
            if (kind, value) in wanted:
                owner_ids[(kind, value)] = offender_id
        victim_rows: dict[int, Row[Any]] = {}
        for row in self._rows(VICTIMS_OF_PEOPLE, person_refs):
            victim_rows[row.id] = row
        wanted_offenders = {
            offender_id for offender_id in owner_ids.values() if offender_id not in casefile.offenders
        }
        wanted_cases = {row.case_id for row in victim_rows.values()} | set(case_ids)
        case_rows = self._case_rows(
            casefile, wanted_offenders, case_refs, [i for i in wanted_cases if i not in casefile.cases_by_id]
        )
        # An offender is read with every case of theirs, also one found through another case's reference.
        more = {row.offender_id for row in case_rows.values()} - wanted_offenders - set(casefile.offenders)
        if more:
            case_rows.update(self._case_rows(casefile, more, [], []))
        offender_ids = (wanted_offenders | {row.offender_id for row in case_rows.values()}) - set(
            casefile.offenders
        )
        # Reading a chunk's offenders takes tens of milliseconds: in groups, urgent work waits for one group at most.
        everyone = sorted(offender_ids | {row.offender_id for row in case_rows.values()})
        for group in chunks(everyone, OFFENDERS_AT_ONCE if stop is not None else max(len(everyone), 1)):
            if stop is not None and stop():
                return False
            members = set(group)
            self._register(
                casefile,
                members & offender_ids,
                {case_id: row for case_id, row in case_rows.items() if row.offender_id in members},
                dict(victim_rows),
            )
        for key in keys:
            owner_id = owner_ids.get(key)
            casefile.owners[key] = casefile.offenders[owner_id] if owner_id is not None else None
        for ref in case_refs:
            casefile.cases_by_ref.setdefault(ref, None)
        for ref in person_refs:
            read = [casefile.victims_by_id[row.id] for row in victim_rows.values()]
            added = [victim for victim in casefile.changes.victims if victim.person_ref == ref]
            casefile.add_read_victims_of(ref, [v for v in read if v.person_ref == ref] + added)
        return True

    def _case_rows(
        self, casefile: CaseFile, offender_ids: Iterable[int], refs: list[str], ids: list[int]
    ) -> dict[int, Row[Any]]:
        found: dict[int, Row[Any]] = {}
        offenders, by_ref, by_id = (
            list(chunks(sorted(offender_ids))),
            list(chunks(refs)),
            list(chunks(sorted(ids))),
        )
        for index in range(max(len(offenders), len(by_ref), len(by_id))):
            parameters = {
                "offenders": offenders[index] if index < len(offenders) else [],
                "refs": by_ref[index] if index < len(by_ref) else [],
                "ids": by_id[index] if index < len(by_id) else [],
            }
            for row in self.connection.execute(CASES_NAMED, parameters):
                if row.id not in casefile.cases_by_id:
                    found[row.id] = row
        return found

    def _register(
        self,
        casefile: CaseFile,
        offender_ids: set[int],
        case_rows: dict[int, Row[Any]],
        victim_rows: dict[int, Row[Any]],
    ) -> None:
        for offender_id in offender_ids:
            casefile.offenders[offender_id] = Offender(id=offender_id)
        cases: dict[int, Case] = {}
        for row in case_rows.values():
            offender = casefile.offenders[row.offender_id]
            case = Case(
                id=row.id,
                case_ref=row.case_ref,
                offender=offender,
                opened_at=row.opened_at,
                owning_unit_code=row.owning_unit_code,
                eligibility_status=row.eligibility_status,
                eligibility_rule=row.eligibility_rule,
                eligibility_basis=row.eligibility_basis,
                status=row.status,
                court_code=row.court_code,
                sentence_date=row.sentence_date,
                youth=row.youth,
                offences=row.offences,
                closed_reason=row.closed_reason,
                closed_at=row.closed_at,
                needs_unit_decision=row.needs_unit_decision,
                expected_release_month=row.expected_release_month,
                key_dates=row.key_dates,
                parole_review_open=row.parole_review_open,
                in_scheme_published=row.in_scheme_published,
            )
            offender.cases.append(case)
            cases[row.id] = case
        if not cases and not offender_ids:
            return
        case_ids = sorted(cases)
        for row in self._rows(VICTIMS_OF_CASES, case_ids):
            victim_rows[row.id] = row
        for row in sorted(victim_rows.values(), key=lambda r: r.id):
            of_case = cases.get(row.case_id)
            if of_case is None or row.id in casefile.victims_by_id:
                continue
            victim = Victim(
                id=row.id,
                case=of_case,
                person_ref=row.person_ref,
                relationship_to_offence=row.relationship_to_offence,
                unit_code=row.unit_code,
                name=row.name,
                postcode=row.postcode,
                language=row.language,
                preferred_channel=row.preferred_channel,
                categories=row.categories,
                opted_out=row.opted_out,
                declined=row.declined,
                accessibility_needs=row.accessibility_needs,
                last_contacted_at=row.last_contacted_at,
                anonymised_at=row.anonymised_at,
                anonymised_reason=row.anonymised_reason,
            )
            of_case.victims.append(victim)
            casefile.victims_by_id[row.id] = victim
            casefile.remember(victim)
        for row in self._rows(ALLOCATIONS_OF_CASES, case_ids):
            allocation = Allocation(
                id=row.id, case=cases[row.case_id], unit_code=row.unit_code, vlo_id=row.vlo_id
            )
            allocation.case.allocations.append(allocation)
            casefile.remember(allocation)
        for case in cases.values():
            casefile.add_read_case(case)
        self._timers(casefile, cases)
        for offender_id, kind, value in self._rows(IDENTIFIERS_OF_OFFENDERS, sorted(offender_ids)):
            casefile.offenders[offender_id].identifiers.append((kind, value))
            casefile.owners.setdefault((kind, value), casefile.offenders[offender_id])
        for row in self._rows(OUTSTANDING_REQUESTS_OF_CASES, case_ids):
            request = LicenceRequest(
                id=row.id,
                case=cases[row.case_id],
                person_ref=row.person_ref,
                request_id=row.request_id,
                kind=row.kind,
                text=row.text,
                code=row.code,
                requested_at=row.requested_at,
            )
            casefile.requests[request.case].append(request)
            casefile.remember(request)

    def _timers(self, casefile: CaseFile, cases: dict[int, Case]) -> None:
        for row in self._rows(RUNNING_TIMERS_OF_CASES, sorted(cases)):
            case = cases[row.case_id]
            timer = Timer(
                id=row.id,
                kind=row.kind,
                case=case,
                victim=casefile.victims_by_id.get(row.victim_id) if row.victim_id is not None else None,
                cause=row.cause,
                due_at=row.due_at,
                started_at=row.started_at,
            )
            casefile.timers[case].running.append(timer)
            casefile.remember(timer)
        for case_id, kind, cause, victim_id in self._rows(FINISHED_TIMERS_OF_CASES, sorted(cases)):
            casefile.timers[cases[case_id]].finished.add((kind, cause, victim_id))

    # ---- what a victim referred late catches up on (hub/pipeline/catch_up.py)
    def _case_level(self, casefile: CaseFile, refs: frozenset[str]) -> set[str]:
        cases = {
            case.id: case
            for ref in refs
            if (case := casefile.cases_by_ref.get(ref)) is not None
            and case.id is not None
            and case not in casefile.case_level
        }
        sources: set[str] = set()
        for case in cases.values():
            casefile.add_read_case_level(case, [])
        for row in self._rows(CASE_LEVEL_NOTIFICATIONS_OF_CASES, sorted(cases)):
            notification = self._notification(casefile, row)
            casefile.case_level[cases[row.case_id]].append(notification)
            if notification.source_event_id is not None:
                sources.add(notification.source_event_id)
        return sources

    # ---- parked events
    def _parked(self, casefile: CaseFile, keys: frozenset[IdentifierKey]) -> None:
        for row in self._rows(PARKED_UNDER, sorted({value for _, value in keys})):
            key = ParkedKey(row.key_kind, row.key_value)
            if key not in keys:
                continue
            parked = casefile.parked_by_id.get(row.id)
            if parked is None:
                parked = parked_event_from_row(row)
                casefile.parked_by_id[row.id] = parked
            parked.keys.append(key)
            casefile.add_read_parked(parked, key)
        casefile.asked = _with(casefile.asked, parked_keys=keys)


def parked_event_from_row(row: Row[Any]) -> ParkedEvent:
    """A parked event as read, without its keys (the caller knows which of them it asked about)."""
    return ParkedEvent(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        source=row.source,
        topic=row.topic,
        payload=row.payload,
        key=row.key,
        headers=row.headers,
        published_at=row.published_at,
        parked_at=row.parked_at,
    )


def notification_from_row(row: Row[Any]) -> Notification:
    return Notification(
        notification_id=row.notification_id,
        kind=row.kind,
        case=None,
        unit_code=row.unit_code,
        event_type=row.event_type,
        action=row.action,
        priority=row.priority,
        topic=row.topic,
        key=row.key,
        payload=row.payload,
        created_at=row.created_at,
        source_event_id=row.source_event_id,
        person_ref=row.person_ref,
        event_published_at=row.event_published_at,
        release_after=row.release_after,
        published_at=row.published_at,
        withdrawn_at=row.withdrawn_at,
        acknowledged_at=row.acknowledged_at,
        case_id=row.case_id,
    )


def _with(needs: Needs, **more: frozenset[Any]) -> Needs:
    """`needs` with more values of some kinds."""
    return Needs(
        **{name: getattr(needs, name) | more.get(name, frozenset()) for name in Needs.__dataclass_fields__}
    )
