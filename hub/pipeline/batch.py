"""One batch of agency messages through ingest, enrich and route, in one case-store transaction.

The stream engine hands a batch in and writes what comes out (dead letters, notifications, records for other
agencies) before it acknowledges the batch. Notifications and outbound records are committed to their outboxes in
the same transaction as the state they follow from, so a crash between the database and the broker loses nothing:
the outboxes are published again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError

from connectors.avro import AvroCodec
from connectors.registry import RegistryUnavailable
from connectors.signatures import Unauthenticated
from hub import metrics
from hub.errors import IdentityConflict, UnknownReference, Unmatched
from hub.messages import (
    InboundMessage,
    OutboundRecord,
    dead_letter,
    headers_from_kept,
    headers_kept,
    log_without_values,
    operator_safe_reason,
)
from hub.pipeline.handlers import EventHandlers, needs_of
from hub.pipeline.ingest import PERMANENT_FAILURES, IngestedEvent, ingest
from hub.pipeline.notify import Cause, NotificationFactory
from hub.runtime.retry import RetryState, token
from hub.settings import Settings
from hub.store import outbox
from hub.store.casefile import CaseFile, Needs
from hub.store.load import StoreLoader
from hub.store.models import TIMER_RUNNING
from hub.store.models import Timer as TimerRow
from hub.store.records import Notification, OutboxRecord, ParkedEvent, ParkedKey, Timer
from hub.store.write import write
from routing.timers import TimerKind, london_day, on_fire
from routing.units import UnitDirectory

log = logging.getLogger(__name__)

TRANSIENT_FAILURES = (OperationalError, RegistryUnavailable)
# The hub's own errors: their messages name fields and rules, never values, so operators may read them.
SAFE_TO_SHOW = (*PERMANENT_FAILURES, Unauthenticated, UnknownReference, IdentityConflict, NotImplementedError)
# A batch delivers its own notifications; the outbox sweep only takes those a crash left behind this long.
OUTBOX_GRACE_SECONDS = 30.0
# Events loaded and decided at a time (`hub.store.load`): the load step reads what they need in a fixed number of
# queries. Urgent work waiting for the case store (`should_yield`) waits for one query or one group of offenders
# (`hub.store.load.OFFENDERS_AT_ONCE`) at most, then for the write and commit of what is decided.
LOAD_STEP = 100


@dataclass(frozen=True)
class TransientFailure:
    """A message that failed for a reason that may pass; the worker sends it up the retry ladder."""

    message: InboundMessage
    stage: str
    error_class: str
    event_type: str = "unknown"  # known once the message is decoded


@dataclass
class BatchResult:
    dead_letters: list[OutboundRecord] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    outbound: list[OutboxRecord] = field(default_factory=list)  # for other agencies' topics
    transient: list[TransientFailure] = field(default_factory=list)
    # Not applied because an earlier message with the same key failed transiently in this batch.
    behind: list[InboundMessage] = field(default_factory=list)
    # When the agency published the event each notification follows from (end-to-end latency).
    published_at: dict[str, datetime] = field(default_factory=dict)
    # Not applied because urgent work was waiting (`should_yield`): to be handed to `apply` again, in this order.
    deferred: list[IngestedEvent] = field(default_factory=list)


class Outcome(NamedTuple):
    source: str
    event_type: str
    outcome: str  # accepted, duplicate, parked


def utc_now() -> datetime:
    return datetime.now(UTC)


# Ids the broker has acknowledged, with when, not yet marked published: (notification ids, outbound record ids, at).
Confirmed = list[tuple[list[str], list[int], datetime]]


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        codec: AvroCodec,
        units: UnitDirectory,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.codec = codec
        self.units = units
        self.clock = clock
        # Notifications and outbound records the broker has, with when it acknowledged them, not yet marked
        # published (`published`). Noted from the event loop, taken by the thread applying a batch: hence the lock.
        self._unconfirmed: Confirmed = []
        self._unconfirmed_lock = threading.Lock()

    def process(
        self,
        messages: list[InboundMessage],
        states: Mapping[str, RetryState] | None = None,
        should_yield: Callable[[], bool] | None = None,
    ) -> BatchResult:
        """Blocking: run it in a thread. Never raises: every message ends applied, as a dead letter, as a
        transient failure for the retry ladder, or deferred (see `apply`). `states` carries what retried messages
        went through."""
        valid, result = self.ingest_all(messages, states)
        return self.apply(valid, states, should_yield, result)

    def ingest_all(
        self, messages: list[InboundMessage], states: Mapping[str, RetryState] | None = None
    ) -> tuple[list[IngestedEvent], BatchResult]:
        """Blocking, and reads nothing from the case store: decode and validate each message. Returns the valid
        events for `apply`, and the result so far (dead letters, transient failures, messages held behind an
        earlier one with the same key)."""
        states = states or {}
        result = BatchResult()
        now = self.clock()
        valid: list[IngestedEvent] = []
        held_keys: set[bytes] = set()
        for message in messages:
            if message.key is not None and message.key in held_keys:
                result.behind.append(message)
                continue
            source = self.settings.source_of_topic(message.topic)
            try:
                valid.append(ingest(message, source, self.codec, self.settings.max_message_bytes, now.date()))
            except TRANSIENT_FAILURES as error:
                if message.key is not None:
                    held_keys.add(message.key)
                log.warning(
                    "%s@%s: %s; it will be retried", message.topic, message.offset, type(error).__name__
                )
                result.transient.append(TransientFailure(message, "ingest", type(error).__name__))
            except PERMANENT_FAILURES as error:
                # The event type of a message that failed ingest cannot be trusted: it is not a label.
                metrics.EVENTS.labels(source or "unknown", "unknown", "dead_letter").inc()
                log.warning("dead letter from %s@%s: %s", message.topic, message.offset, error)
                result.dead_letters.append(self.dead_letter_for(message, "ingest", error, states))
            except Exception as error:  # a bug met by one message must not stop the others
                metrics.EVENTS.labels(source or "unknown", "unknown", "dead_letter").inc()
                log_without_values(log, f"dead letter from {message.topic}@{message.offset} at ingest", error)
                result.dead_letters.append(self.dead_letter_for(message, "ingest", error, states))
        return valid, result

    def apply(
        self,
        valid: list[IngestedEvent],
        states: Mapping[str, RetryState] | None = None,
        should_yield: Callable[[], bool] | None = None,
        result: BatchResult | None = None,
        urgent: bool = False,
    ) -> BatchResult:
        """Apply ingested events in one transaction. `should_yield` is asked between events and between the
        queries that look up the next events: once it says yes, what is applied is committed and the events not
        yet started come back as `result.deferred`, to be handed to `apply` again, so that urgent work waiting
        for the case store goes first. An `urgent` batch's transaction does its own work only: marking what the
        broker has confirmed is left to the next ordinary one (no urgent event's rules ask whether a notification
        is on its queue)."""
        states = states or {}
        result = result or BatchResult()
        if not valid:
            return result
        if should_yield is not None and should_yield():
            # Urgent work came while this waited for its turn: it goes first, before a transaction is begun.
            result.deferred = valid
            return result
        now = self.clock()
        # Agencies publish to separate topics; applying a batch in publication order keeps cause before effect
        # (a referral before the release that follows it). The sort is stable: equal times keep the consumed order.
        valid = sorted(valid, key=lambda ingested: ingested.event.envelope.published_at)
        try:
            result.deferred = self._apply_all(valid, now, result, should_yield, confirm=not urgent)
        except TRANSIENT_FAILURES as error:
            log.warning(
                "batch of %d events failed (%s); they will be retried", len(valid), type(error).__name__
            )
            result.transient.extend(
                TransientFailure(e.message, "route", type(error).__name__, e.event_type) for e in valid
            )
        except Exception:
            # A bug or bad data in one event must not hold back the rest: find it by applying one at a time.
            log.warning("batch failed; applying its %d events one by one", len(valid))
            for ingested in valid:
                try:
                    self._apply_all([ingested], now, result)
                except TRANSIENT_FAILURES as error:
                    result.transient.append(
                        TransientFailure(ingested.message, "route", type(error).__name__, ingested.event_type)
                    )
                except Exception as error:
                    log_without_values(
                        log, f"dead letter at route for {ingested.event_type} {ingested.event_id}", error
                    )
                    metrics.EVENTS.labels(ingested.source, ingested.event_type, "dead_letter").inc()
                    result.dead_letters.append(self.dead_letter_for(ingested.message, "route", error, states))
        return result

    def dead_letter_for(
        self, message: InboundMessage, stage: str, error: BaseException, states: Mapping[str, RetryState]
    ) -> OutboundRecord:
        metrics.DEAD_LETTERS.labels(stage=stage, error_class=type(error).__name__).inc()
        reason = operator_safe_reason(error, SAFE_TO_SHOW)
        state = states.get(token(message))
        if state is None:
            return dead_letter(message, self.settings.dead_letter_topic, stage, type(error).__name__, reason)
        return dead_letter(
            message,
            self.settings.dead_letter_topic,
            stage,
            type(error).__name__,
            reason,
            attempts=state.attempts + 1,
            first_failure_at=state.first_failure_at,
            history=state.history_json(),
        )

    def _apply_all(
        self,
        events: list[IngestedEvent],
        now: datetime,
        result: BatchResult,
        should_yield: Callable[[], bool] | None = None,
        confirm: bool = True,
    ) -> list[IngestedEvent]:
        """Apply events in one transaction, a step at a time: load what the step needs, decide each event on it in
        memory, and write what changed once at the end. Returns the events left for later because `should_yield`
        said so. With `confirm`, the transaction first marks published what the broker has confirmed."""
        produced: list[Notification] = []
        outbound: list[OutboxRecord] = []
        deferred: list[IngestedEvent] = []
        outcomes: list[Outcome] = []
        published_at: dict[str, datetime] = {}
        stop = should_yield or (lambda: False)
        confirming: AbstractContextManager[Confirmed] = self._confirming() if confirm else nullcontext([])
        with confirming as confirmed, self.engine.begin() as connection:
            # First, so that what the events decide sees every notification the broker already has as published
            # (a cancelled release that is on its queue gets a correction).
            self._mark(connection, confirmed)
            loader = StoreLoader(connection)
            casefile = CaseFile(loader)
            handlers = EventHandlers(casefile, self.units, self.settings, self.codec, now)
            for start in range(0, len(events), LOAD_STEP):
                step = events[start : start + LOAD_STEP]
                if stop() or not loader.load(casefile, needs_of(step), should_yield):
                    deferred = events[start:]
                    break
                released: list[IngestedEvent] = []
                for index, ingested in enumerate(step):
                    if stop():
                        deferred = events[start + index :]
                        break
                    if ingested.event_id in casefile.processed:
                        outcomes.append(Outcome(ingested.source, ingested.event_type, "duplicate"))
                        continue
                    casefile.processed.add(ingested.event_id)
                    casefile.mark_processed(ingested.event_id, ingested.event_type, ingested.source, now)
                    unparked = self._apply_one(
                        casefile, handlers, ingested, now, produced, outbound, published_at
                    )
                    outcomes.append(
                        Outcome(
                            ingested.source, ingested.event_type, "parked" if unparked is None else "accepted"
                        )
                    )
                    released.extend(unparked or [])
                # Events this transaction took from the park are applied in it, since their park rows go with it;
                # they may release more in turn.
                while released:
                    loader.load(casefile, needs_of(released))
                    releasing, released = released, []
                    for ingested in releasing:
                        released.extend(
                            self._apply_one(
                                casefile, handlers, ingested, now, produced, outbound, published_at
                            )
                            or []
                        )
                if deferred:
                    break
            write(connection, casefile)
            casefile.unlink()
        # Counted once the transaction has committed, so a batch applied again is not counted twice; a count per
        # label set, not per event.
        for (source, event_type, outcome), count in Counter(outcomes).items():
            metrics.EVENTS.labels(source, event_type, outcome).inc(count)
            if outcome == "accepted":
                metrics.LAST_EVENT.labels(source).set(now.timestamp())
            elif outcome == "parked":
                metrics.PARKED.labels(source=source).inc(count)
        # A release cancelled later in the same transaction was withdrawn before anyone was told of it: it stays in
        # the store, withdrawn, and goes to no queue (a correction goes only for a release already on its queue).
        result.notifications.extend(n for n in produced if n.withdrawn_at is None)
        result.outbound.extend(outbound)
        result.published_at.update(published_at)
        return deferred

    def _apply_one(
        self,
        casefile: CaseFile,
        handlers: EventHandlers,
        ingested: IngestedEvent,
        now: datetime,
        produced: list[Notification],
        outbound: list[OutboxRecord],
        published_at: dict[str, datetime],
    ) -> list[IngestedEvent] | None:
        """Apply one event; returns parked events that its new identifier links release, None if it was parked."""
        try:
            effects = handlers.apply(ingested)
        except Unmatched as unmatched:
            casefile.park(
                ParkedEvent(
                    event_id=ingested.event_id,
                    event_type=ingested.event_type,
                    source=ingested.source,
                    topic=ingested.message.topic,
                    payload=ingested.message.value or b"",
                    key=ingested.message.key,
                    headers=headers_kept(ingested.message.headers),
                    published_at=ingested.event.envelope.published_at,
                    parked_at=now,
                    keys=[ParkedKey(kind, value) for kind, value in unmatched.keys],
                )
            )
            log.info("parked %s %s: no matching case yet", ingested.event_type, ingested.event_id)
            return None
        event_published_at = ingested.event.envelope.published_at
        for notification in effects.notifications:
            if casefile.add_notification(notification):
                notification.event_published_at = event_published_at
                published_at[notification.notification_id] = event_published_at
                produced.append(notification)
        for record in effects.outbound:
            casefile.add_outbound(record)
            outbound.append(record)
        released = []
        for parked in casefile.take_parked(effects.new_keys):
            message = InboundMessage(
                parked.topic, -1, -1, None, parked.key, parked.payload, headers_from_kept(parked.headers)
            )
            released.append(
                ingest(message, parked.source, self.codec, self.settings.max_message_bytes, now.date())
            )
            log.info("unparked %s %s", parked.event_type, parked.event_id)
        return released

    def pending_outbox(self, limit: int = 1000) -> list[Notification]:
        """Notifications due on their queue: left unconfirmed by a crash, or released from a hold."""
        now = self.clock()
        with self.engine.connect() as connection:
            return outbox.unpublished(connection, now, now - timedelta(seconds=OUTBOX_GRACE_SECONDS), limit)

    def pending_outbound(self, limit: int = 1000) -> list[OutboxRecord]:
        """Outbound records a crash left unpublished: one query for the whole batch."""
        settled = self.clock() - timedelta(seconds=OUTBOX_GRACE_SECONDS)
        with self.engine.connect() as connection:
            return outbox.unpublished_outbound(connection, settled, limit)

    def parked_events(self, older_than_seconds: float = 0.0) -> list[ParkedEvent]:
        """Events still waiting for a case, oldest first (what operators see)."""
        cutoff = self.clock() - timedelta(seconds=older_than_seconds)
        with self.engine.connect() as connection:
            return outbox.parked(connection, cutoff)

    def parked_summary(self) -> tuple[int, datetime | None]:
        """How many events wait for a case, and when the oldest was parked."""
        with self.engine.connect() as connection:
            return outbox.parked_summary(connection)

    def fire_due_timers(self, limit: int = 500) -> list[Notification]:
        """Raise the task or escalation of every timer now due; returns the notifications to deliver."""
        now = self.clock()
        produced: list[Notification] = []
        with self.engine.begin() as connection:
            due = connection.execute(
                select(TimerRow.id, TimerRow.case_id, TimerRow.kind, TimerRow.cause)
                .where(TimerRow.due_at <= now, *TIMER_RUNNING)
                .order_by(TimerRow.due_at)
                .limit(limit)
            ).all()
            if not due:
                return []
            casefile = CaseFile(StoreLoader(connection))
            urgent = TimerKind.URGENT_UNACKNOWLEDGED.value
            casefile.loader.load(
                casefile,
                Needs(
                    case_ids=frozenset(row.case_id for row in due),
                    notification_ids=frozenset(row.cause for row in due if row.kind == urgent),
                ),
            )
            running = {timer.id: timer for timers in casefile.timers.values() for timer in timers.running}
            factory = NotificationFactory(self.settings, self.codec, now)
            made: list[tuple[Timer, Notification]] = []
            for row in due:
                timer = running[row.id]
                timer.fired_at = now
                notification = self._timer_notification(casefile, factory, timer)
                if notification is not None:
                    made.append((timer, notification))
            # Whether any was made before (a timer fired again after a crash): one look-up for them all.
            casefile.loader.load(
                casefile,
                Needs(
                    notification_ids=frozenset(
                        n.notification_id for _, n in made if n.source_event_id is None
                    ),
                    event_ids=frozenset(n.source_event_id for _, n in made if n.source_event_id is not None),
                ),
            )
            for timer, notification in made:
                if casefile.add_notification(notification):
                    produced.append(notification)
                    metrics.TIMERS_FIRED.labels(timer=timer.kind).inc()
            write(connection, casefile)
            casefile.unlink()
        return produced

    def _timer_notification(
        self, store: CaseFile, factory: NotificationFactory, timer: Timer
    ) -> Notification | None:
        case, victim = timer.case, timer.victim
        kind = TimerKind(timer.kind)
        if kind is TimerKind.URGENT_UNACKNOWLEDGED:
            return self._urgent_escalation(store, factory, timer)
        if not case.notifiable or (victim is not None and (victim.opted_out or victim.declined)):
            return None
        firing = on_fire(kind, london_day(timer.due_at - timedelta(seconds=1)), youth=case.youth)
        cause = Cause(firing.kind, f"{timer.kind}:{timer.id}", timer.kind, ())
        return factory.build(
            cause, case, timer.victim, firing.decision, firing.content, None, to_triage=firing.to_triage
        )

    def _urgent_escalation(
        self, store: CaseFile, factory: NotificationFactory, timer: Timer
    ) -> Notification | None:
        """Safety does not depend on an opt-in: an unanswered urgent notification escalates for every victim."""
        urgent = store.notification(timer.cause)
        if urgent is None or urgent.acknowledged_at is not None:
            return None
        log.error(
            "urgent notification %s unacknowledged; escalated to unit %s triage",
            timer.cause,
            urgent.unit_code,
        )
        firing = on_fire(TimerKind.URGENT_UNACKNOWLEDGED, london_day(timer.due_at), about=urgent.event_type)
        sources = (urgent.source_event_id,) if urgent.source_event_id else ()
        cause = Cause(firing.kind, f"{timer.kind}:{timer.id}", timer.kind, sources)
        return factory.build(
            cause,
            timer.case,
            timer.victim,
            firing.decision,
            firing.content,
            None,
            unit_code=urgent.unit_code,
            to_triage=True,
        )

    def published(
        self, notification_ids: list[str], at: datetime, outbound_ids: list[int] | None = None
    ) -> None:
        """Note notifications the broker has acknowledged (at `at`). The next ordinary batch's transaction marks them
        published, or `confirm_published`, rather than a transaction of their own after every batch, which would
        cost each batch a commit. Until then the store holds them as not yet on their queues; a worker
        that stops first leaves them to the outbox sweep, which puts them on their queues again (readers absorb a
        second copy by notification id)."""
        if notification_ids or outbound_ids:
            with self._unconfirmed_lock:
                self._unconfirmed.append((notification_ids, outbound_ids or [], at))

    def confirm_published(self) -> None:
        """Mark published, in a transaction of their own, the notifications noted by `published`: before the
        outbox sweep reads what is left to send, and as the worker stops."""
        with self._confirming() as confirmed:
            if confirmed:
                with self.engine.begin() as connection:
                    self._mark(connection, confirmed)

    @staticmethod
    def _mark(connection: Connection, confirmed: Confirmed) -> None:
        """One update per publication noted (and per table), whatever its size."""
        for notification_ids, outbound_ids, at in confirmed:
            if notification_ids:
                outbox.mark_published(connection, notification_ids, at)
            if outbound_ids:
                outbox.mark_outbound_published(connection, outbound_ids, at)

    @contextmanager
    def _confirming(self) -> Iterator[Confirmed]:
        """The notifications noted as published so far, to mark in a transaction inside this block; if the
        block fails, they are noted again for the next one."""
        with self._unconfirmed_lock:
            taken, self._unconfirmed = self._unconfirmed, []
        try:
            yield taken
        except BaseException:
            with self._unconfirmed_lock:
                self._unconfirmed[:0] = taken
            raise
