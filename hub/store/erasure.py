"""Erasure on request: the hub's copy of one victim's personal data goes, in one transaction, and their unit is told.

What goes: the victim's name, postcode, language, channel and accessibility needs; the stored body of every
notification about them (the unit's queue has its own copy, kept until that queue's retention); notifications not
yet on their queue (withdrawn, so nothing holding the data is sent afterwards); the text of their licence condition
requests and the stored body of each request forwarded for them (one not yet sent is not sent); events waiting for
them in the park; dead letters that name them (hidden from every list and replay, their stored copy deleted). An
erased victim is out of the scheme: when that leaves the case with nobody in it, the scheme flag's change is
written for offender-facing systems in the same transaction (hub/pipeline/outbound.py). What stays: the victim
row's references and the choices routing and the statistics read (person_ref, unit, relationship, categories,
opt-out), and every notification row without its body, so the coverage figures and the audit still add up.
person_ref is the unit's own pseudonymous reference: it is kept so the unit can match what it holds and a second
request finds the victim already erased.

A new referral published after the erasure brings the victim back (they rejoined); one published before it, or any
other event, does not bring the data back (hub/pipeline/handlers/witness_care.py).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from connectors.avro import AvroCodec, hub_codec
from connectors.queue_reader import NOTIFICATION_ID_HEADER
from connectors.sealing import Opener, is_sealed
from hub.errors import VictimNotFound
from hub.pipeline.notify import Cause, NotificationFactory
from hub.pipeline.outbound import OutboundFactory
from hub.reference import load_units
from hub.settings import Settings
from hub.store import records
from hub.store.models import (
    TIMER_RUNNING,
    Case,
    DeadLetterCopy,
    LicenceRequest,
    Notification,
    OffenderIdentifier,
    OperatorAction,
    OutboxRecord,
    ParkedEvent,
    ParkedEventKey,
    PurgedDeadLetter,
    Timer,
    Victim,
)
from hub.store.retention import rowcount
from hub.store.write import notification_row, outbound_row
from routing.catalogue import Category
from routing.content import NotificationContent
from routing.decisions import Action, Decision, Kind, Priority
from routing.timers import TimerKind

ACTION = "victims.erase"
ERASED = "erasure"  # victims.anonymised_reason
# The cause named in the notification that tells the unit: the hub's own, not an agency event or a timer.
ERASURE_EVENT_TYPE = "victim_data_erased"
RECORD_ONLY = Decision(Action.RECORD_ONLY, Priority.NORMAL)
MAX_REASON_CHARS = 500
_PERSONAL_FIELDS = ("name", "postcode", "language", "preferred_channel", "accessibility_needs")


@dataclass(frozen=True)
class ErasureResult:
    case_ref: str
    person_ref: str
    erased_at: datetime  # now, or when an earlier request erased the victim
    already_erased: bool = False
    notifications_cleared: int = 0  # notification rows whose stored body was removed
    notifications_withdrawn: int = 0  # of those, not yet on their queue: they will not be sent
    timers_stopped: int = 0
    parked_deleted: int = 0
    dead_letters_purged: int = 0
    requests_cleared: int = 0  # licence condition requests whose text was removed
    outbound_dropped: int = 0  # forwarded requests whose stored body was removed (unsent ones are not sent)
    scheme_flag: bool | None = None  # the scheme flag written for the case, if the erasure changed it
    notification_id: str | None = None  # the record_only notification that tells the unit
    unit_code: str | None = None
    withdrawn_events: tuple[str, ...] = ()

    @property
    def rows_changed(self) -> int:
        """Rows this erasure changed, deleted or added (the audit's count): none for a repeated request."""
        if self.already_erased:
            return 0
        return (
            1  # the victim
            + self.notifications_cleared
            + self.timers_stopped
            + self.parked_deleted
            + self.dead_letters_purged
            + self.requests_cleared
            + self.outbound_dropped
            + (1 if self.notification_id else 0)
        )


def audit_target(case_ref: str, person_ref: str, reason: str, outcome: str = "") -> str:
    return f"case {case_ref} person {person_ref}: {reason}" + (f"; {outcome}" if outcome else "")


def record_refusal(
    engine: Engine, case_ref: str, person_ref: str, reason: str, actor: str, now: datetime
) -> None:
    """An erasure refused before it started (the caller may not erase): audited all the same."""
    with Session(engine) as session, session.begin():
        _audit(session, actor, audit_target(case_ref, person_ref, reason, "refused: not an admin"), 0, now)


def erase_victim(
    engine: Engine,
    case_ref: str,
    person_ref: str,
    reason: str,
    actor: str,
    now: datetime,
    *,
    settings: Settings,
    codec: AvroCodec | None = None,
    dead_letter_opener: Opener | None = None,
) -> ErasureResult:
    """Erase one victim's personal data (see the module) and audit it, in one transaction. A repeated request
    changes nothing and is audited with a count of 0; an unknown case or person is audited, then VictimNotFound.
    `dead_letter_opener` (the operations keys) lets it recognise the victim inside dead letters; without it only
    dead letters of the victim's notifications are found."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("give the reason for the erasure (for the audit and the unit)")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"the reason is over {MAX_REASON_CHARS} characters")
    codec = codec or hub_codec()
    missing: str | None = None
    result: ErasureResult | None = None
    with (
        _wiping(engine) as connection,
        Session(bind=connection, expire_on_commit=False) as session,
        session.begin(),
    ):
        case = session.scalars(
            select(Case).where(Case.case_ref == case_ref).options(selectinload(Case.allocations))
        ).one_or_none()
        victim_id = (
            session.scalar(
                select(Victim.id).where(Victim.case_id == case.id, Victim.person_ref == person_ref)
            )
            if case is not None
            else None
        )
        if case is None or victim_id is None:
            missing = f"no case {case_ref}" if case is None else f"no person {person_ref} on case {case_ref}"
            _audit(session, actor, audit_target(case_ref, person_ref, reason, "not found"), 0, now)
        else:
            result = _erase(session, case, victim_id, reason, now, settings, codec, dead_letter_opener)
            _audit(session, actor, audit_target(case_ref, person_ref, reason), result.rows_changed, now)
    if missing is not None:
        raise VictimNotFound(missing)
    assert result is not None
    return result


def _erase(
    session: Session,
    case: Case,
    victim_id: int,
    reason: str,
    now: datetime,
    settings: Settings,
    codec: AvroCodec,
    opener: Opener | None,
) -> ErasureResult:
    # One conditional statement decides whether this request erases: two requests at once cannot both do it (the
    # second waits for the first's row lock, or SQLite's write lock, and then finds the victim erased).
    erased = session.execute(
        update(Victim)
        .where(
            Victim.id == victim_id,
            or_(Victim.anonymised_reason.is_(None), Victim.anonymised_reason != ERASED),
        )
        .values(**dict.fromkeys(_PERSONAL_FIELDS), anonymised_at=now, anonymised_reason=ERASED)
        .execution_options(synchronize_session=False)
    )
    victim = session.scalars(
        select(Victim).where(Victim.id == victim_id).execution_options(populate_existing=True)
    ).one()
    if rowcount(erased) == 0:
        return ErasureResult(
            case.case_ref,
            victim.person_ref,
            victim.anonymised_at or now,
            already_erased=True,
            unit_code=victim.unit_code,
        )
    person_ref = victim.person_ref
    theirs = (Notification.case_id == case.id, Notification.person_ref == person_ref)
    rows = session.execute(
        select(
            Notification.notification_id,
            Notification.event_type,
            Notification.source_event_id,
            Notification.published_at,
            Notification.withdrawn_at,
            Notification.acknowledged_at,
            Notification.payload.is_not(None).label("has_payload"),
        ).where(*theirs)
    ).all()
    unsent = [r for r in rows if r.published_at is None and r.withdrawn_at is None]
    session.execute(
        update(Notification)
        .where(*theirs, Notification.published_at.is_(None), Notification.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Notification)
        .where(*theirs, Notification.payload.is_not(None))
        .values(payload=None)
        .execution_options(synchronize_session=False)
    )
    changed = {r.notification_id for r in rows if r.has_payload} | {r.notification_id for r in unsent}
    timers_stopped = _stop_timers(session, victim, rows, now)
    parked_deleted = _delete_parked(session, case.case_ref, person_ref, codec)
    purged = _purge_dead_letters(
        session, case.case_ref, person_ref, {r.notification_id for r in rows}, codec, opener, now
    )
    withdrawn_events = tuple(
        f"{r.event_type} {r.source_event_id}" if r.source_event_id else r.event_type for r in unsent
    )
    told = _tell_the_unit(session, case, victim, reason, now, settings, codec, withdrawn_events)
    requests_cleared = rowcount(
        session.execute(
            update(LicenceRequest)
            .where(
                LicenceRequest.case_id == case.id,
                LicenceRequest.person_ref == person_ref,
                or_(LicenceRequest.text.is_not(None), LicenceRequest.reason.is_not(None)),
            )
            .values(text=None, reason=None)
            .execution_options(synchronize_session=False)
        )
    )
    outbound_dropped = rowcount(
        session.execute(
            update(OutboxRecord)
            .where(
                OutboxRecord.case_id == case.id,
                OutboxRecord.person_ref == person_ref,
                OutboxRecord.payload.is_not(None),
            )
            .values(payload=None)
            .execution_options(synchronize_session=False)
        )
    )
    flag = _scheme_flag(session, case, now, settings, codec)
    return ErasureResult(
        case.case_ref,
        person_ref,
        now,
        notifications_cleared=len(changed),
        notifications_withdrawn=len(unsent),
        timers_stopped=timers_stopped,
        parked_deleted=parked_deleted,
        dead_letters_purged=purged,
        requests_cleared=requests_cleared,
        outbound_dropped=outbound_dropped,
        scheme_flag=flag,
        notification_id=told.notification_id,
        unit_code=told.unit_code,
        withdrawn_events=withdrawn_events,
    )


def _stop_timers(session: Session, victim: Victim, notifications: Sequence[Any], now: datetime) -> int:
    """Stop the victim's running timers, except the escalation of an urgent notification already on its queue and
    not acknowledged: the unit has it and must still answer it (safety does not depend on the victim's data, and
    the escalation carries none)."""
    on_queue = {
        r.notification_id
        for r in notifications
        if r.published_at is not None and r.withdrawn_at is None and r.acknowledged_at is None
    }
    stopped = 0
    for timer in session.scalars(select(Timer).where(Timer.victim_id == victim.id, *TIMER_RUNNING)):
        if timer.kind == TimerKind.URGENT_UNACKNOWLEDGED.value and timer.cause in on_queue:
            continue
        timer.stopped_at = now
        stopped += 1
    return stopped


def names_victim(record: Mapping[str, Any], case_ref: str, person_ref: str) -> bool:
    """Whether a decoded agency event is about this victim: it names the person, and this case or none (an address
    change names the person only)."""
    victim = record.get("victim")
    people = {record.get("person_ref"), victim.get("person_ref") if isinstance(victim, Mapping) else None}
    if person_ref not in people:
        return False
    subject = (record.get("envelope") or {}).get("subject") or {}
    return subject.get("case_ref") in (None, case_ref)


def _delete_parked(session: Session, case_ref: str, person_ref: str, codec: AvroCodec) -> int:
    """Delete the events parked until this person's referral arrived. One for the same person on another case
    stays; one that cannot be read any more goes (it is parked under this person, and erasure errs on removing)."""
    waiting = session.scalars(
        select(ParkedEvent).where(
            ParkedEvent.id.in_(
                select(ParkedEventKey.parked_event_id).where(
                    ParkedEventKey.kind == "person_ref", ParkedEventKey.value == person_ref
                )
            )
        )
    ).all()
    ids = []
    for parked in waiting:
        try:
            record = codec.decode(parked.payload).record
        except Exception:  # undecodable now: the schema changed, or a registry is away
            ids.append(parked.id)
            continue
        if names_victim(record, case_ref, person_ref):
            ids.append(parked.id)
    if ids:
        session.execute(delete(ParkedEventKey).where(ParkedEventKey.parked_event_id.in_(ids)))
        session.execute(
            delete(ParkedEvent).where(ParkedEvent.id.in_(ids)).execution_options(synchronize_session=False)
        )
    return len(ids)


def _purge_dead_letters(
    session: Session,
    case_ref: str,
    person_ref: str,
    notification_ids: set[str],
    codec: AvroCodec,
    opener: Opener | None,
    now: datetime,
) -> int:
    """Dead letters about the victim: an undelivered notification of theirs (by its id header), or an agency event
    naming them (opened with the operations keys). Each is purged (hidden from list, show and replay, so a replay
    cannot bring the data back) and its stored copy deleted; the topic drops it at its retention."""
    found = []
    for copy in session.scalars(select(DeadLetterCopy)):
        headers = {name: value for name, value in copy.headers}
        header = headers.get(NOTIFICATION_ID_HEADER)
        if header is not None and base64.b64decode(header).decode("ascii", "replace") in notification_ids:
            found.append(copy)
        elif opener is not None and copy.value and is_sealed(copy.value):
            try:
                record = codec.decode(opener.open(copy.value)).record
            except Exception:  # not an agency event the hub can read: nothing shows it is about this victim
                continue
            if names_victim(record, case_ref, person_ref):
                found.append(copy)
    for copy in found:
        if session.get(PurgedDeadLetter, (copy.partition, copy.offset)) is None:
            session.add(PurgedDeadLetter(partition=copy.partition, offset=copy.offset, purged_at=now))
        session.delete(copy)
    return len(found)


def _tell_the_unit(
    session: Session,
    case: Case,
    victim: Victim,
    reason: str,
    now: datetime,
    settings: Settings,
    codec: AvroCodec,
    withdrawn_events: tuple[str, ...],
) -> records.Notification:
    """The record_only notification to the victim's unit, built from the erased victim (so with no personal data);
    the worker's outbox sweep puts it on the unit's queue."""
    summary = (
        "At the victim's request the hub has erased its copy of their personal data (name, postcode, language, "
        "contact channel, accessibility needs, and the notifications and waiting events that held them). It "
        "keeps only references, the unit and the victim's choices. Later notifications about this person carry "
        "no name: match them by person_ref. A new referral brings the victim back into the hub."
    )
    facts = {"erased_at": now.isoformat(), "reason": reason}
    if withdrawn_events:
        summary += (
            f" {len(withdrawn_events)} notification(s) not yet on the queue were withdrawn; see withdrawn."
        )
        facts["withdrawn"] = "; ".join(withdrawn_events)
    cause = Cause(Kind.EVENT, f"erasure:{now.isoformat()}", ERASURE_EVENT_TYPE)
    # The factory reads of an ORM case and victim what it reads of the pipeline's records (the same attributes).
    notification = NotificationFactory(settings, codec, now).build(
        cause,
        case,  # type: ignore[arg-type]
        victim,  # type: ignore[arg-type]
        RECORD_ONLY,
        NotificationContent(summary, facts),
        Category.RECORD_ONLY.value,
    )
    session.execute(insert(Notification), [notification_row(notification)])
    return notification


def _scheme_flag(
    session: Session, case: Case, now: datetime, settings: Settings, codec: AvroCodec
) -> bool | None:
    """The case's scheme flag for offender-facing systems, written if erasing the victim changed it; the worker's
    outbox sweep publishes it. Returns the flag written, or None."""
    identifiers: dict[str, str] = {}
    for kind, value in session.execute(
        select(OffenderIdentifier.kind, OffenderIdentifier.value)
        .where(OffenderIdentifier.offender_id == case.offender_id)
        .order_by(OffenderIdentifier.id)
    ):
        identifiers.setdefault(kind, value)
    factory = OutboundFactory(settings, codec, load_units(settings), now)
    rows = factory.scheme_flag(case, identifiers, f"erasure:{now.isoformat()}")  # type: ignore[arg-type]
    if rows:
        session.execute(insert(OutboxRecord), [outbound_row(row) for row in rows])
    return case.in_scheme_published if rows else None


def _audit(session: Session, actor: str, target: str, count: int, now: datetime) -> None:
    session.add(OperatorAction(at=now, actor=actor[:200], action=ACTION, target=target[:2000], count=count))


@contextmanager
def _wiping(engine: Engine) -> Iterator[Connection]:
    """A connection on which SQLite overwrites what it deletes or replaces (secure_delete) and, afterwards, copies
    its write-ahead log into the database file and empties it, so no old page with the victim's values stays in
    either file. PostgreSQL keeps old row versions until vacuum reclaims them (README, Erasure)."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA secure_delete=ON")
            connection.commit()
        try:
            yield connection
        finally:
            if sqlite:
                connection.rollback()  # nothing is open here; ends the pragma's own autobegun transaction
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.commit()
