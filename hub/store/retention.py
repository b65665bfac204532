"""The retention schedule: how long the case store keeps what it holds, and what happens then (README, Retention).

Each step finds what is due with one set-based query and deals with it in batches of HUB_RETENTION_BATCH rows,
each batch in a short transaction of its own that also writes its audit row (operator_actions, actor
"retention"). A worker takes a turn at its store gate for each batch's transaction, so urgent work waits for one
batch at most; `hub retention run` runs it from the command line, and `--dry-run` only says what is due.
Running it again changes nothing: each step's query finds only what is still due.

Parked events no case claimed go to the dead-letter topic before they leave the store (sent first, deleted
after: a crash between sends one again, never loses one), so an operator can still replay them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Engine,
    Result,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from hub import metrics
from hub.messages import InboundMessage, OutboundRecord, dead_letter, headers_from_kept
from hub.settings import Settings
from hub.store.models import (
    Case,
    ConsoleSignOut,
    DeadLetterCopy,
    FailedSignIn,
    LicenceRequest,
    Notification,
    OperatorAction,
    OutboxRecord,
    ParkedEvent,
    ParkedEventKey,
    ProcessedEvent,
    PurgedDeadLetter,
    ReaderProgress,
    RetryCopy,
    Timer,
    Victim,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# Runs blocking case-store work: the worker's store gate, or a thread.
InStore = Callable[..., Awaitable[Any]]
# Writes records (dead letters) to the broker, sealed, and returns once the broker has them all.
Send = Callable[[list[OutboundRecord]], Awaitable[None]]

AUDIT_ACTOR = "retention"
ANONYMISED_REASON = "retention"
SHOWN_IDS = 20  # ids a report lists per step; the count says how many more
STAGE = "park"
UNCLAIMED = "Unclaimed"
# A failed console sign-in counts towards a 15-minute lockout and for nothing after it: a day is ample.
FAILED_SIGN_INS_KEPT = timedelta(days=1)
VICTIM_PERSONAL_FIELDS = ("name", "postcode", "language", "preferred_channel", "accessibility_needs")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetentionSchedule:
    """How long each thing is kept, from the settings (HUB_*_RETENTION_*)."""

    victim_data: timedelta
    notification_payloads: timedelta
    outbound_payloads: timedelta
    processed_events: timedelta
    parked_events: timedelta
    dead_letters: timedelta
    retry_records: timedelta
    reader_progress: timedelta
    audit: timedelta
    batch: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionSchedule:
        return cls(
            victim_data=timedelta(days=settings.victim_data_retention_days),
            notification_payloads=timedelta(days=settings.queue_retention_days),
            # The outbound topics keep records as long as the agency topics (hub/runtime/topics.py).
            outbound_payloads=timedelta(days=settings.agency_topic_retention_days),
            processed_events=timedelta(days=settings.processed_events_retention_days),
            parked_events=timedelta(days=settings.parked_events_retention_days),
            dead_letters=timedelta(days=settings.dead_letter_retention_days),
            retry_records=timedelta(hours=settings.retry_topic_retention_hours),
            # A reader's progress points at a notification on its queue: once the queue has dropped that, the
            # progress can no longer be put back (hub/runtime/queues.py).
            reader_progress=timedelta(days=settings.queue_retention_days),
            audit=timedelta(days=settings.audit_retention_days),
            batch=settings.retention_batch,
        )


@dataclass
class StepReport:
    """What one step found due (a dry run) or did: how many, the first ids, and what changed by kind."""

    step: str
    rule: str
    count: int = 0
    ids: list[str] = field(default_factory=list)
    changes: Counter[str] = field(default_factory=Counter)

    def note(self, count: int, ids: Sequence[str], changes: Counter[str]) -> None:
        self.count += count
        self.ids.extend(ids[: max(SHOWN_IDS - len(self.ids), 0)])
        self.changes.update(changes)

    def line(self, done: bool, with_ids: bool = True) -> str:
        """One line for people: counts and references only, never personal data."""
        text = f"{self.step}: {self.count} {'done' if done else 'due'} ({self.rule})"
        if self.changes:
            text += "; " + ", ".join(f"{what} {count}" for what, count in sorted(self.changes.items()))
        if with_ids and self.ids:
            more = self.count - len(self.ids)
            text += ": " + " ".join(self.ids) + (f" and {more} more" if more > 0 else "")
        return text


@dataclass(frozen=True)
class Batch:
    """A batch a step dealt with: the ids it names (for the report and the audit) and what changed by kind."""

    count: int
    ids: list[str]
    changes: Counter[str]


Row = Any  # a result row of a step's `due` query: its key columns, then any it shows


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE run through a Session changed: the result is a CursorResult, which
    Session.execute's return type does not say."""
    return cast("CursorResult[Any]", result).rowcount


class Step:
    """One line of the schedule: what is due at `now`, and what is done to a batch of it."""

    name: str
    shows_ids = True  # False: the audit and the report give counts only

    def __init__(self, schedule: RetentionSchedule) -> None:
        self.schedule = schedule

    @property
    def key_columns(self) -> int:
        """How many of the first columns of a `due` row name it."""
        return 1

    @property
    def rule(self) -> str:
        raise NotImplementedError

    def due(self, now: datetime) -> Any:
        """A query of the rows due, in the order they are dealt with: key columns first, then what `shown` reads."""
        raise NotImplementedError

    def shown(self, row: Row) -> str:
        return str(row[-1])

    def after(self, query: Any, position: Any) -> Any:
        """`query` restricted to rows after `position` (see `position`)."""
        return query

    def position(self, row: Row) -> Any:
        """Where a run goes on from after this row, for a step whose rows stay due-shaped once dealt with (their
        time has passed for good): None when dealt-with rows no longer match `due` at all."""
        return None

    def key(self, row: Row) -> Any:
        return row[0] if self.key_columns == 1 else tuple(row[: self.key_columns])

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        raise NotImplementedError

    def count(self, session: Session, now: datetime) -> int:
        return session.scalar(select(func.count()).select_from(self.due(now).order_by(None).subquery())) or 0

    def take(self, session: Session, now: datetime, limit: int, position: Any = None) -> list[Row]:
        query = self.due(now) if position is None else self.after(self.due(now), position)
        return list(session.execute(query.limit(limit)).all())


def _days(period: timedelta) -> str:
    if period.days:
        return f"{period.days} day{'s' if period.days != 1 else ''}"
    return f"{period.total_seconds() / 3600:g} hours"


def _victim_still_has_data() -> ColumnElement[bool]:
    """A victim not yet anonymised, or holding any personal field again."""
    return or_(
        Victim.anonymised_at.is_(None),
        *(getattr(Victim, name).is_not(None) for name in VICTIM_PERSONAL_FIELDS),
    )


class ParkedEvents(Step):
    """An event no case or identifier link claimed within the period goes to the dead-letter topic (stage park,
    error class Unclaimed), then leaves the store, and its id leaves the applied events' so that a replay is
    applied rather than taken for a duplicate."""

    name = "parked_events"

    @property
    def rule(self) -> str:
        return f"parked events no case claimed {_days(self.schedule.parked_events)} after parking, to the dead letters"

    def due(self, now: datetime) -> Any:
        return (
            select(ParkedEvent.id, ParkedEvent.event_id)
            .where(ParkedEvent.parked_at <= now - self.schedule.parked_events)
            .order_by(ParkedEvent.parked_at, ParkedEvent.id)
        )

    def load(self, session: Session, keys: list[Any]) -> list[ParkedEvent]:
        rows = list(
            session.scalars(select(ParkedEvent).where(ParkedEvent.id.in_(keys)).order_by(ParkedEvent.id))
        )
        session.expunge_all()
        return rows

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        # Only those still parked: one a worker unparked meanwhile was applied, and its id must stay.
        session.execute(delete(ParkedEventKey).where(ParkedEventKey.parked_event_id.in_(keys)))
        removed = (
            session.execute(
                delete(ParkedEvent).where(ParkedEvent.id.in_(keys)).returning(ParkedEvent.event_id),
                execution_options={"synchronize_session": False},
            )
            .scalars()
            .all()
        )
        if removed:
            session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(removed)),
                execution_options={"synchronize_session": False},
            )
        return Counter({"dead-lettered and deleted": len(removed)})


class VictimData(Step):
    """Closed cases past the period: their victims' personal fields removed, their notifications' and outbound
    records' payloads dropped (they name the victim, or carry the conditions asked in their words), the text of
    their licence condition requests removed, their timers deleted (closing the case stopped them; nothing is owed
    on a closed case).
    Only closed cases: the victims of an open case who opted out or declined are kept, since an urgent safety
    escalation still reaches their VLO."""

    name = "victim_data"

    @property
    def rule(self) -> str:
        return f"victims' personal data {_days(self.schedule.victim_data)} after their case closed"

    def due(self, now: datetime) -> Any:
        holds_data = or_(
            exists().where(Victim.case_id == Case.id, _victim_still_has_data()),
            exists().where(Notification.case_id == Case.id, Notification.payload.is_not(None)),
            exists().where(OutboxRecord.case_id == Case.id, OutboxRecord.payload.is_not(None)),
            exists().where(
                LicenceRequest.case_id == Case.id,
                or_(LicenceRequest.text.is_not(None), LicenceRequest.reason.is_not(None)),
            ),
            exists().where(Timer.case_id == Case.id),
        )
        return (
            select(Case.id, Case.closed_at, Case.case_ref)
            .where(Case.status == "closed", Case.closed_at <= now - self.schedule.victim_data, holds_data)
            .order_by(Case.closed_at, Case.id)
        )

    # A case dealt with stays closed long ago: a run goes on after the last case of each batch, so that it walks
    # the closed cases once, not once per batch.
    def after(self, query: Any, position: Any) -> Any:
        closed_at, case_id = position
        return query.where(
            or_(Case.closed_at > closed_at, and_(Case.closed_at == closed_at, Case.id > case_id))
        )

    def position(self, row: Row) -> Any:
        return (row.closed_at, row.id)

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        anonymised: dict[str, Any] = dict.fromkeys(VICTIM_PERSONAL_FIELDS)
        anonymised |= {"anonymised_at": now, "anonymised_reason": ANONYMISED_REASON}
        victims = session.execute(
            update(Victim).where(Victim.case_id.in_(keys), _victim_still_has_data()).values(**anonymised),
            execution_options={"synchronize_session": False},
        )
        payloads = session.execute(
            update(Notification)
            .where(Notification.case_id.in_(keys), Notification.payload.is_not(None))
            .values(payload=None),
            execution_options={"synchronize_session": False},
        )
        outbound = session.execute(
            update(OutboxRecord)
            .where(OutboxRecord.case_id.in_(keys), OutboxRecord.payload.is_not(None))
            .values(payload=None),
            execution_options={"synchronize_session": False},
        )
        requests = session.execute(
            update(LicenceRequest)
            .where(
                LicenceRequest.case_id.in_(keys),
                or_(LicenceRequest.text.is_not(None), LicenceRequest.reason.is_not(None)),
            )
            .values(text=None, reason=None),
            execution_options={"synchronize_session": False},
        )
        timers = session.execute(
            delete(Timer).where(Timer.case_id.in_(keys)), execution_options={"synchronize_session": False}
        )
        return Counter(
            {
                "victims anonymised": rowcount(victims),
                "payloads dropped": rowcount(payloads) + rowcount(outbound),
                "requests cleared": rowcount(requests),
                "timers deleted": rowcount(timers),
            }
        )


class NotificationPayloads(Step):
    """A notification's payload (what its unit reads, sealed anew when a lost queue is put back) once its queue
    has dropped it too, or once it was withdrawn before it reached its queue. The row stays: it is the record of
    what was sent to which unit, and when."""

    name = "notification_payloads"

    @property
    def rule(self) -> str:
        return (
            f"notification payloads {_days(self.schedule.notification_payloads)} after reaching their queue"
        )

    def due(self, now: datetime) -> Any:
        cutoff = now - self.schedule.notification_payloads
        # Read from ix_notifications_payload_kept: the payloads still kept, not every notification ever made.
        return (
            select(Notification.notification_id)
            .where(
                Notification.payload.is_not(None),
                or_(
                    Notification.published_at <= cutoff,
                    and_(Notification.published_at.is_(None), Notification.withdrawn_at <= cutoff),
                ),
            )
            .order_by(Notification.published_at, Notification.notification_id)
        )

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        dropped = session.execute(
            update(Notification)
            .where(Notification.notification_id.in_(keys), Notification.payload.is_not(None))
            .values(payload=None),
            execution_options={"synchronize_session": False},
        )
        return Counter({"payloads dropped": rowcount(dropped)})


class OutboundPayloads(Step):
    """An outbound record's payload once its topic has dropped it too (the agency topics' retention after it was
    published): nothing can be put back past that. The row stays, the record of what was told to whom."""

    name = "outbound_payloads"

    @property
    def rule(self) -> str:
        return f"outbound record payloads {_days(self.schedule.outbound_payloads)} after publication"

    def due(self, now: datetime) -> Any:
        # Read from ix_outbound_records_payload_kept: the payloads still kept.
        return (
            select(OutboxRecord.id)
            .where(
                OutboxRecord.payload.is_not(None),
                OutboxRecord.published_at <= now - self.schedule.outbound_payloads,
            )
            .order_by(OutboxRecord.published_at, OutboxRecord.id)
        )

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        dropped = session.execute(
            update(OutboxRecord)
            .where(OutboxRecord.id.in_(keys), OutboxRecord.payload.is_not(None))
            .values(payload=None),
            execution_options={"synchronize_session": False},
        )
        return Counter({"payloads dropped": rowcount(dropped)})


class Prune(Step):
    """Rows deleted once their time column is `period` old; `rule` reads `what` with the period in it."""

    model: Any
    when: Any  # the time column, from the table (a mapped attribute would bind to the step as a descriptor)
    what: str  # "... {period} ..."

    def period(self) -> timedelta:
        raise NotImplementedError

    def columns(self) -> list[Any]:
        """The key columns, then any `shown` reads."""
        return list(self.model.__table__.primary_key.columns)

    @property
    def key_columns(self) -> int:
        return len(self.model.__table__.primary_key.columns)

    @property
    def rule(self) -> str:
        return self.what.format(period=_days(self.period()))

    def due(self, now: datetime) -> Any:
        keys = list(self.model.__table__.primary_key.columns)
        return select(*self.columns()).where(self.when <= now - self.period()).order_by(self.when, *keys)

    def apply(self, session: Session, keys: list[Any], now: datetime) -> Counter[str]:
        columns = list(self.model.__table__.primary_key.columns)
        where = columns[0].in_(keys) if len(columns) == 1 else tuple_(*columns).in_(keys)
        deleted = session.execute(
            delete(self.model).where(where), execution_options={"synchronize_session": False}
        )
        return Counter({"rows deleted": rowcount(deleted)})


class ProcessedEvents(Prune):
    """An applied event's id, kept to recognise the same event again: longer than the agency topics keep events
    (a redelivery or a reset consumer group cannot bring back an older one) plus time for an agency's re-send."""

    name = "processed_events"
    model = ProcessedEvent
    when = ProcessedEvent.__table__.c.processed_at
    what = "ids of applied events {period} after they were applied"

    def period(self) -> timedelta:
        return self.schedule.processed_events


class DeadLetterCopies(Prune):
    """The store's copy of a dead letter, kept to put it back on a broker that lost its topics: no longer than
    the dead-letter topic keeps the letter."""

    name = "dead_letter_copies"
    model = DeadLetterCopy
    when = DeadLetterCopy.__table__.c.written_at
    what = "copies of dead letters {period} after they were written"

    def period(self) -> timedelta:
        return self.schedule.dead_letters

    def columns(self) -> list[Any]:
        return [DeadLetterCopy.id, DeadLetterCopy.partition, DeadLetterCopy.offset]

    def shown(self, row: Row) -> str:
        return f"{row.partition}:{row.offset}"


class RetryCopies(Prune):
    """The store's copy of a record in the retry ladder is removed when its tier takes it (hub/runtime/queues.py);
    one left behind (the worker stopped between the two) is no use once the retry topic would have dropped it."""

    name = "retry_copies"
    model = RetryCopy
    when = RetryCopy.__table__.c.written_at
    what = "copies of retry records {period} after they were written"

    def period(self) -> timedelta:
        return self.schedule.retry_records

    def columns(self) -> list[Any]:
        return [RetryCopy.id, RetryCopy.topic, RetryCopy.partition, RetryCopy.offset]

    def shown(self, row: Row) -> str:
        return f"{row.topic}:{row.partition}:{row.offset}"


class PurgedDeadLetters(Prune):
    """The purge list hides dead letters still on the topic: one purged longer ago than the topic keeps letters
    is gone from it."""

    name = "purged_dead_letters"
    model = PurgedDeadLetter
    when = PurgedDeadLetter.__table__.c.purged_at
    what = "the dead letters' purge list {period} after each purge"

    def period(self) -> timedelta:
        return self.schedule.dead_letters

    def shown(self, row: Row) -> str:
        return f"{row.partition}:{row.offset}"


class ReaderProgresses(Prune):
    name = "reader_progress"
    model = ReaderProgress
    when = ReaderProgress.__table__.c.at
    what = "unit queue readers' progress not updated for {period}"

    def period(self) -> timedelta:
        return self.schedule.reader_progress

    def shown(self, row: Row) -> str:
        return f"{row.reader_group}@{row.topic}:{row.partition}"


class Audit(Prune):
    name = "operator_actions"
    model = OperatorAction
    when = OperatorAction.__table__.c.at
    what = "the audit of operators' actions {period} after each"

    def period(self) -> timedelta:
        return self.schedule.audit


class FailedSignIns(Prune):
    name = "failed_sign_ins"
    model = FailedSignIn
    when = FailedSignIn.__table__.c.at
    what = "failed console sign-ins {period} after each"
    shows_ids = False  # counts only: a password typed into the name field must not reach a report

    def period(self) -> timedelta:
        return FAILED_SIGN_INS_KEPT


class ConsoleSignOuts(Prune):
    """A signed-out session is refused until it would have expired anyway; after that its row says nothing."""

    name = "console_sign_outs"
    model = ConsoleSignOut
    when = ConsoleSignOut.__table__.c.until
    what = "console sign-outs once their session would have expired"
    shows_ids = False

    def period(self) -> timedelta:
        return timedelta(0)


def unclaimed_dead_letter(parked: ParkedEvent, settings: Settings, waited: timedelta) -> OutboundRecord:
    """The dead letter of a parked event no case claimed: the record as the agency published it (key, value,
    headers with its signature), and the worker's headers on what failed (hub/messages.py), so `hub dlq list`,
    `show` and `replay` treat it as any other. Where it was consumed is not kept: partition and offset are -1."""
    message = InboundMessage(
        topic=parked.topic,
        partition=-1,
        offset=-1,
        timestamp_ms=int(parked.published_at.timestamp() * 1000),
        key=parked.key,
        value=parked.payload,
        headers=headers_from_kept(parked.headers),
    )
    reason = (
        f"{parked.event_type} {parked.event_id} from {parked.source}: no case or identifier link claimed it "
        f"within {_days(waited)} of parking; replay it once its case exists"
    )
    return dead_letter(
        message, settings.dead_letter_topic, STAGE, UNCLAIMED, reason, first_failure_at=parked.parked_at
    )


async def _in_thread(work: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(work, *args)


class Retention:
    """The schedule over one case store: `due` (what a dry run lists) and `run`."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Callable[[], datetime] = utc_now,
        actor: str = AUDIT_ACTOR,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.actor = actor
        self.schedule = RetentionSchedule.from_settings(settings)
        self.parked = ParkedEvents(self.schedule)
        # Parked events before applied events' ids: a parked event's id leaves with it (see ParkedEvents).
        self.steps: list[Step] = [
            self.parked,
            VictimData(self.schedule),
            NotificationPayloads(self.schedule),
            OutboundPayloads(self.schedule),
            ProcessedEvents(self.schedule),
            DeadLetterCopies(self.schedule),
            RetryCopies(self.schedule),
            PurgedDeadLetters(self.schedule),
            ReaderProgresses(self.schedule),
            Audit(self.schedule),
            FailedSignIns(self.schedule),
            ConsoleSignOuts(self.schedule),
        ]

    def due(self) -> list[StepReport]:
        """What each step would do now, changing nothing: how many, and the first ids."""
        now = self.clock()
        reports = []
        with Session(self.engine) as session:
            for step in self.steps:
                report = StepReport(step.name, step.rule, count=step.count(session, now))
                if step.shows_ids and report.count:
                    report.ids = [step.shown(row) for row in step.take(session, now, SHOWN_IDS)]
                reports.append(report)
        return reports

    async def run(
        self, send: Send, write: InStore = _in_thread, read: InStore = _in_thread
    ) -> list[StepReport]:
        """Every step, batch by batch: what is due is read through `read`, and each batch is dealt with through
        `write` in a transaction of its own; unclaimed parked events are handed to `send` (which returns once the
        broker has them) before they are deleted. A worker gives its store gate as `write`, and reads apart from
        it, as it counts its gauges: a read waits for no writer (SQLite's WAL) and holds no lock urgent work needs."""
        now = self.clock()
        reports = []
        for step in self.steps:
            report = StepReport(step.name, step.rule)
            done: set[Any] = set()
            position = None
            while True:
                rows = await read(self._take, step, now, position)
                keys = [step.key(row) for row in rows]
                # Nothing left, or only rows this run dealt with (a writer put data back since): the next run.
                if not keys or set(keys) <= done:
                    break
                if step is self.parked:
                    parked = await read(self._load_parked, keys)
                    await send(
                        [unclaimed_dead_letter(p, self.settings, self.schedule.parked_events) for p in parked]
                    )
                    metrics.DEAD_LETTERS.labels(stage=STAGE, error_class=UNCLAIMED).inc(len(parked))
                batch = await write(self._apply, step, rows, now)
                report.note(batch.count, batch.ids, batch.changes)
                done.update(keys)
                position = step.position(rows[-1])
                if len(keys) < self.schedule.batch:
                    break
            reports.append(report)
            if report.count:
                log.info("retention: %s", report.line(done=True, with_ids=False))
        return reports

    def _take(self, step: Step, now: datetime, position: Any) -> list[Row]:
        with Session(self.engine) as session:
            return step.take(session, now, self.schedule.batch, position)

    def _load_parked(self, keys: list[Any]) -> list[ParkedEvent]:
        with Session(self.engine) as session:
            return self.parked.load(session, keys)

    def _apply(self, step: Step, rows: list[Row], now: datetime) -> Batch:
        keys = [step.key(row) for row in rows]
        ids = [step.shown(row) for row in rows] if step.shows_ids else []
        with Session(self.engine) as session, session.begin():
            changes = step.apply(session, keys, now)
            session.add(
                OperatorAction(
                    at=now,
                    actor=self.actor,
                    action=f"retention.{step.name}",
                    target=f"{step.rule}: {' '.join(ids) or f'{len(keys)} rows'}"[:2000],
                    count=len(keys),
                )
            )
        return Batch(len(keys), ids, changes)
