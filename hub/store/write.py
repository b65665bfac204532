"""The write step: what a CaseFile's transaction changed, one statement per table and kind (an INSERT of every
new row, an UPDATE per set of changed columns), in the order the foreign keys need.

New rows that others refer to (offenders, cases, victims, outbound records, parked events) take their ids from
the INSERT's RETURNING, in the order given, before the rows that refer to them are written.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text, update

from hub.store.casefile import CaseFile
from hub.store.load import chunks
from hub.store.models import (
    ALLOCATIONS,
    CASES,
    IDENTIFIERS,
    NOTIFICATIONS,
    OFFENDERS,
    OUTBOUND,
    PARKED,
    PARKED_KEYS,
    PROCESSED,
    REQUESTS,
    TIMERS,
    VICTIMS,
)
from hub.store.records import (
    Allocation,
    Case,
    LicenceRequest,
    Notification,
    OutboxRecord,
    Timer,
    Victim,
)

# The table of each kind of record read and changed, and the column that names a row of it.
_TABLES: dict[type, tuple[Table, str]] = {
    Case: (CASES, "id"),
    Victim: (VICTIMS, "id"),
    Allocation: (ALLOCATIONS, "id"),
    Timer: (TIMERS, "id"),
    Notification: (NOTIFICATIONS, "notification_id"),
    LicenceRequest: (REQUESTS, "id"),
}


def write(connection: Connection, casefile: CaseFile) -> None:
    changes = casefile.changes
    # First: a write that refers to nothing, so that on SQLite the transaction holds the write lock from here on.
    _insert(connection, PROCESSED, changes.processed)
    _insert_with_ids(connection, OFFENDERS, changes.offenders, [{} for _ in changes.offenders])
    merged = [{"b_keep": keep.id, "b_remove": remove.id} for keep, remove in changes.merged]
    if merged:
        connection.execute(
            update(IDENTIFIERS)
            .where(IDENTIFIERS.c.offender_id == bindparam("b_remove"))
            .values(offender_id=bindparam("b_keep")),
            merged,
        )
    _insert(
        connection,
        IDENTIFIERS,
        [
            {"offender_id": offender.id, "kind": kind, "value": value}
            for offender, (kind, value) in changes.identifiers
        ],
    )
    _insert_with_ids(connection, CASES, changes.cases, [_case_row(case) for case in changes.cases])
    changed = _changed_by_kind(casefile)
    _update(connection, Case, changed)
    for chunk in chunks([remove.id for _, remove in changes.merged if remove.id is not None]):
        connection.execute(delete(OFFENDERS).where(OFFENDERS.c.id.in_(chunk)))
    _insert_with_ids(
        connection, VICTIMS, changes.victims, [_victim_row(victim) for victim in changes.victims]
    )
    _update(connection, Victim, changed)
    _insert(
        connection,
        ALLOCATIONS,
        [{"case_id": a.case.id, "unit_code": a.unit_code, "vlo_id": a.vlo_id} for a in changes.allocations],
    )
    _update(connection, Allocation, changed)
    _insert(connection, TIMERS, [_timer_row(timer) for timer in changes.timers])
    _update(connection, Timer, changed)
    if changes.timers_stopped_by_cause:
        connection.execute(
            update(TIMERS)
            .where(TIMERS.c.cause == bindparam("b_cause"), TIMERS.c.stopped_at.is_(None))
            .values(stopped_at=bindparam("b_at")),
            [{"b_cause": cause, "b_at": at} for cause, at in changes.timers_stopped_by_cause],
        )
    _insert(connection, NOTIFICATIONS, [notification_row(n) for n in changes.notifications])
    _update(connection, Notification, changed)
    _insert_with_ids(connection, OUTBOUND, changes.outbound, [outbound_row(r) for r in changes.outbound])
    _insert(connection, REQUESTS, [_request_row(r) for r in changes.requests])
    _update(connection, LicenceRequest, changed)
    # Taken from the park before any is parked again: an event parked anew must not meet its old row.
    for chunk in chunks(changes.unparked_ids):
        connection.execute(delete(PARKED_KEYS).where(PARKED_KEYS.c.parked_event_id.in_(chunk)))
        connection.execute(delete(PARKED).where(PARKED.c.id.in_(chunk)))
    parked_rows = [
        {
            "event_id": p.event_id,
            "event_type": p.event_type,
            "source": p.source,
            "topic": p.topic,
            "payload": p.payload,
            "key": p.key,
            "headers": p.headers,
            "published_at": p.published_at,
            "parked_at": p.parked_at,
        }
        for p in changes.parked
    ]
    _insert_with_ids(connection, PARKED, changes.parked, parked_rows)
    _insert(
        connection,
        PARKED_KEYS,
        [
            {"parked_event_id": p.id, "kind": kind, "value": value}
            for p in changes.parked
            for kind, value in dict.fromkeys(p.keys)
        ],
    )


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(table), rows)


def _insert_with_ids(
    connection: Connection, table: Table, records: list[Any], rows: list[dict[str, Any]]
) -> None:
    """Give each record a new id, then insert the rows with them in one statement. (An INSERT ... RETURNING that
    must keep the order of its rows goes one row at a time on SQLite.)"""
    if not records:
        return
    for record, row, new_id in zip(records, rows, _new_ids(connection, table, len(records)), strict=True):
        record.id = row["id"] = new_id
    connection.execute(insert(table), rows)


def _new_ids(connection: Connection, table: Table, count: int) -> list[int]:
    if connection.dialect.name == "postgresql":
        return list(
            connection.scalars(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                {"table": table.name, "count": count},
            )
        )
    # SQLite: the write step's first statement took the database's one write lock for this transaction, so no
    # other writer can take these ids before the rows are in.
    top = connection.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


def _changed_by_kind(casefile: CaseFile) -> dict[type, dict[tuple[str, ...], list[Any]]]:
    """The records read and changed since, by kind and by the set of columns that changed."""
    found: dict[type, dict[tuple[str, ...], list[Any]]] = defaultdict(lambda: defaultdict(list))
    for record, names in casefile.changed():
        found[type(record)][tuple(names)].append(record)
    return found


def _update(
    connection: Connection, kind: type, changed: dict[type, dict[tuple[str, ...], list[Any]]]
) -> None:
    table, key = _TABLES[kind]
    for names, records in changed.get(kind, {}).items():
        columns = ["offender_id" if name == "offender" else name for name in names]
        statement = (
            update(table)
            .where(table.c[key] == bindparam("b_key"))
            .values({column: bindparam(f"b_{column}") for column in columns})
        )
        rows = []
        for record in records:
            row = {"b_key": getattr(record, key)}
            for name, column in zip(names, columns, strict=True):
                value = getattr(record, name)
                row[f"b_{column}"] = value.id if name == "offender" else value
            rows.append(row)
        connection.execute(statement, rows)


def _case_row(case: Case) -> dict[str, Any]:
    return {
        "case_ref": case.case_ref,
        "offender_id": case.offender.id,
        "court_code": case.court_code,
        "sentence_date": case.sentence_date,
        "youth": case.youth,
        "offences": case.offences,
        "eligibility_status": case.eligibility_status,
        "eligibility_rule": case.eligibility_rule,
        "eligibility_basis": case.eligibility_basis,
        "owning_unit_code": case.owning_unit_code,
        "status": case.status,
        "closed_reason": case.closed_reason,
        "closed_at": case.closed_at,
        "needs_unit_decision": case.needs_unit_decision,
        "expected_release_month": case.expected_release_month,
        "key_dates": case.key_dates,
        "opened_at": case.opened_at,
        "parole_review_open": case.parole_review_open,
        "in_scheme_published": case.in_scheme_published,
    }


def _victim_row(victim: Victim) -> dict[str, Any]:
    return {
        "case_id": victim.case.id,
        "person_ref": victim.person_ref,
        "name": victim.name,
        "relationship_to_offence": victim.relationship_to_offence,
        "postcode": victim.postcode,
        "unit_code": victim.unit_code,
        "language": victim.language,
        "preferred_channel": victim.preferred_channel,
        "categories": victim.categories,
        "opted_out": victim.opted_out,
        "declined": victim.declined,
        "accessibility_needs": victim.accessibility_needs,
        "last_contacted_at": victim.last_contacted_at,
        "anonymised_at": victim.anonymised_at,
        "anonymised_reason": victim.anonymised_reason,
    }


def _timer_row(timer: Timer) -> dict[str, Any]:
    return {
        "kind": timer.kind,
        "case_id": timer.case.id,
        "victim_id": timer.victim.id if timer.victim is not None else None,
        "cause": timer.cause,
        "due_at": timer.due_at,
        "started_at": timer.started_at,
        "stopped_at": timer.stopped_at,
        "fired_at": timer.fired_at,
    }


def notification_row(notification: Notification) -> dict[str, Any]:
    case = notification.case
    return {
        "notification_id": notification.notification_id,
        "kind": notification.kind,
        "case_id": case.id if case is not None else notification.case_id,
        "unit_code": notification.unit_code,
        "event_type": notification.event_type,
        "action": notification.action,
        "priority": notification.priority,
        "topic": notification.topic,
        "key": notification.key,
        "payload": notification.payload,
        "source_event_id": notification.source_event_id,
        "person_ref": notification.person_ref,
        "created_at": notification.created_at,
        "event_published_at": notification.event_published_at,
        "release_after": notification.release_after,
        "published_at": notification.published_at,
        "withdrawn_at": notification.withdrawn_at,
        "acknowledged_at": notification.acknowledged_at,
    }


def outbound_row(record: OutboxRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "key": record.key,
        "payload": record.payload,
        "record_type": record.record_type,
        "case_id": record.case.id if record.case is not None else None,
        "person_ref": record.person_ref,
        "created_at": record.created_at,
        "published_at": record.published_at,
    }


def _request_row(request: LicenceRequest) -> dict[str, Any]:
    return {
        "case_id": request.case.id,
        "person_ref": request.person_ref,
        "request_id": request.request_id,
        "kind": request.kind,
        "text": request.text,
        "code": request.code,
        "requested_at": request.requested_at,
        "outcome": request.outcome,
        "reason": request.reason,
        "decided_by_event_id": request.decided_by_event_id,
        "decided_at": request.decided_at,
    }
