"""The stream worker: a faust app, with the agency lanes (hub/runtime/lanes.py) and its agents feeding batches
of messages to the pipeline.

A batch is acknowledged once it is handled (a lane commits its offsets; faust acknowledges once the agent's loop
body has run, even if it raised), so handling never raises: every
message ends as notifications on a unit queue, a parked event, a record in the retry ladder, or a dead letter
before its batch is acknowledged. Transient failures (database, schema registry) leave the main path for the
retry topics (hub/runtime/retry.py), so one bad moment does not stall every other event; duplicates that a retry or a
redelivery causes are absorbed by event-id de-duplication and notification ids.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.registry import registry_for
from connectors.sealing import SealedRecordError
from hub import metrics
from hub.console.web import Console, add_console
from hub.errors import MissingKeys
from hub.messages import InboundMessage, OutboundRecord, dead_letter, log_without_values
from hub.pipeline import BatchResult, Pipeline, TransientFailure
from hub.pipeline.delivery import NOTIFICATION_ID_HEADER, HttpDeliveries
from hub.pipeline.ingest import IngestedEvent
from hub.pipeline.outbound import RECORD_TYPE_HEADER
from hub.reference import load_units
from hub.runtime.in_place import until_it_works
from hub.runtime.lanes import OrdinaryLane, UrgentLane
from hub.runtime.prompt_fetch import fetch_promptly
from hub.runtime.protection import RecordProtection, Unauthenticated
from hub.runtime.publication_order import in_chunks
from hub.runtime.queues import (
    WrittenRecord,
    forget_retries,
    keep_dead_letters,
    keep_retries,
    restore_dead_letters,
    restore_outbound,
    restore_queues,
    restore_retries,
)
from hub.runtime.retry import RetryBook, RetryLadder, RetryMessage, RetryState, token
from hub.runtime.store_gate import StoreGate
from hub.runtime.topics import ensure_topics, hub_topics, retention_of
from hub.settings import Settings
from hub.store.engine import open_store
from hub.store.records import Notification, OutboxRecord
from hub.store.retention import Retention
from hub.store.watch import watched_counts
from routing.timers import TimerKind
from schemas import OUTBOUND_RECIPIENTS

log = logging.getLogger(__name__)

WATCH_SECONDS = 2.0
# Ordinary batches are applied this many events at a time, one transaction each unless urgent work makes one step
# aside sooner (hub/runtime/store_gate.py). Smaller chunks cost more per event (each transaction has a fixed cost);
# larger ones make urgent work wait longer at the gate.
APPLY_CHUNK = 100
# The pending-timers gauge: a count over every running timer, about a million in a store of a million cases
# (hub/store/watch.py); overdue timers and unanswered urgent notifications are still counted every timer check.
PENDING_COUNT_SECONDS = 60.0
# The retention schedule (hub/store/retention.py) runs first this long after start, once the worker has caught up
# with what waited for it, then every HUB_RETENTION_EVERY_HOURS; a run that failed (the database away) is tried
# again after RETENTION_RETRY_SECONDS rather than a whole period later.
RETENTION_FIRST_RUN_SECONDS = 300.0
RETENTION_RETRY_SECONDS = 600.0


def _inbound(message: Any) -> InboundMessage:
    return InboundMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=message.key,
        value=message.value,
        headers=[(k, v) for k, v in (message.headers or [])],
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Owns the faust app and the pipeline; `app` is what `faust.Worker` runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker = settings.resolved_broker()
        self.units = load_units(settings)
        self.ladder = RetryLadder(settings.retry_topic, settings.retry_delays_seconds)
        self._retry_topics = {self.ladder.topic(tier) for tier in self.ladder.tiers}
        self.protection = RecordProtection(
            settings,
            [unit.code for unit in self.units.units],
            [self.ladder.topic(t) for t in self.ladder.tiers],
        )
        if missing := self.protection.missing():
            raise MissingKeys("; ".join(missing))
        self.pipeline = Pipeline(
            settings,
            open_store(settings),
            hub_codec(registry=registry_for(settings.schema_registry_url)),
            self.units,
        )
        if unsigned := self.protection.agencies_without_keys():
            log.warning(
                "no public keys for agencies %s: their events will be dead-lettered", ", ".join(unsigned)
            )
        self.book = RetryBook()
        self.retention = Retention(settings, self.pipeline.engine, clock=self.pipeline.clock)
        self.gate = StoreGate(urgent_in_loop=settings.resolved_database_url.startswith("sqlite"))
        self.ordinary_lane = OrdinaryLane(settings, self.handle_safely)
        self.urgent_lane = UrgentLane(settings, lambda messages: self.handle_safely(messages, urgent=True))
        self.deliveries = HttpDeliveries(settings, self._send_until_it_works)
        self.consuming = False
        self._pending_counted_at: float | None = None  # monotonic time of the last pending-timers count
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{self.broker}",
            store="memory://",
            autodiscover=False,
            topic_partitions=settings.topic_partitions,
            topic_allow_declare=False,  # the hub creates its topics itself (ensure_topics)
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.session_timeout_seconds,
            broker_heartbeat_interval=max(1.0, settings.session_timeout_seconds / 5),
            producer_acks=-1,
            # A retry tier may be waiting minutes for a message's time: a rebalance must not wait for it.
            stream_wait_empty=False,
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            datadir=str(settings.data_dir / "faust"),
            **settings.faust_client_options(),
        )
        fetch_promptly(self.app, settings.fetch_wait_ms)
        self._define()

    def _define(self) -> None:
        app = self.app
        settings = self.settings

        # The agency lanes read with consumers of their own (hub/runtime/lanes.py); faust runs the rest.
        @app.task
        async def route_agency_events() -> None:
            await self.ordinary_lane.run()

        @app.task
        async def route_urgent_events() -> None:
            await self.urgent_lane.run()

        for tier in self.ladder.tiers:
            self._retry_agent(tier)

        if self.deliveries.topics():
            queues = app.topic(*self.deliveries.topics(), key_serializer="raw", value_serializer="raw")

            @app.agent(queues, name="deliver_over_http")
            async def deliver_over_http(stream: faust.StreamT) -> None:
                # faust's StreamT, what agents are typed to take, lacks take_events, which every Stream has.
                async for events in stream.take_events(  # type: ignore[attr-defined]
                    settings.batch_size, within=settings.batch_wait_seconds
                ):
                    await self.deliveries.deliver([_inbound(event.message) for event in events])

        @app.timer(interval=settings.timer_check_seconds)
        async def deadlines_and_holds() -> None:
            # Every worker runs this; timers and the outbox are rows, so two workers at once only risk a
            # duplicate on the queue, which the stable notification id absorbs.
            fired = await until_it_works(
                "firing due timers", lambda: self.gate.run(self.pipeline.fire_due_timers)
            )
            await self._deliver(fired)
            # Notifications committed before a crash, or released from their correction hold.
            await self.flush_outbox()
            await self.watch_parked()
            await self.watch_counts()

        @app.task
        async def retention_schedule() -> None:
            await self.keep_to_retention()

        @app.timer(interval=WATCH_SECONDS)
        async def retries_and_lag() -> None:
            # Apart from the deadlines above, which wait for the database: these gauges matter most when it is away.
            self.watch_retries()
            try:
                self.watch_lag()
            except Exception as error:  # a gauge is not worth stopping for
                log.warning("could not measure consumer lag (%s)", type(error).__name__)

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust types receivers narrower than it calls them
        async def _assigned(sender: Any, assigned: set[Any], **__: Any) -> None:
            # The ordinary lane reads the inbound partitions whose retries this worker was given
            # (hub/runtime/lanes.py).
            retry_topics = {self.ladder.topic(tier) for tier in self.ladder.tiers}
            self.ordinary_lane.follow({tp.partition for tp in assigned if tp.topic in retry_topics})

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # faust types receivers narrower than it calls them
        async def _consuming(sender: Any, *_: Any, **__: Any) -> None:
            self.consuming = True

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types receivers narrower than it calls them
        async def _paused(sender: Any, *_: Any, **__: Any) -> None:
            self.consuming = False
            self.ordinary_lane.follow(())  # another worker may be given them

        @app.page("/health")
        async def health(web: Any, request: Any) -> Any:
            ready = self.consuming and self.ordinary_lane.ready and self.urgent_lane.ready
            return web.json({"status": "consuming" if ready else "starting"}, status=200 if ready else 503)

        @app.page("/metrics")
        async def prometheus(web: Any, request: Any) -> Any:
            return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

        # the operations console at / (hub/console/)
        add_console(
            self.app,
            Console(
                self.settings,
                self.pipeline.engine,
                self.broker,
                self.protection.operations,
                lambda: self.consuming,
            ),
        )

    def _retry_agent(self, tier: int) -> None:
        topic = self.app.topic(self.ladder.topic(tier), key_serializer="raw", value_serializer="raw")
        # take_events wakes every `within` seconds, message or not: with the ordinary lane's short batch wait, the
        # idle tiers would wake hundreds of times a second, a large part of an idle worker's Python time. A retried
        # message waits its tier's delay anyway, so a tenth of that, at most a second, is not noticed.
        wait = max(self.settings.batch_wait_seconds, min(self.ladder.delays[tier - 1] / 10, 1.0))

        async def retry_tier(stream: faust.StreamT) -> None:
            async for events in stream.take_events(self.settings.batch_size, within=wait):  # type: ignore[attr-defined]
                await self.handle_retries(tier, [_inbound(event.message) for event in events])

        self.app.agent(topic, name=f"retry_tier_{tier}")(retry_tier)

    async def prepare(self) -> None:
        """Create every topic the hub uses before consuming, and, with HUB_RESTORE_LOST_QUEUES, put back the unit
        queues and dead letters on a broker that lost them (hub/runtime/queues.py)."""
        names = hub_topics(self.settings, [unit.code for unit in self.units.units])
        await until_it_works(
            "creating topics",
            lambda: ensure_topics(
                self.broker,
                names,
                self.settings.topic_partitions,
                self.settings.topic_replication,
                client_options=self.settings.kafka_client_options(),
                retention=retention_of(self.settings),
            ),
        )
        if self.settings.restore_lost_queues:
            await self._restore_lost_queues()

    async def _restore_lost_queues(self) -> None:
        unit_topics = [self.settings.unit_topic(unit.code) for unit in self.units.units]
        restored = await until_it_works(
            "restoring the unit queues",
            lambda: restore_queues(
                self.broker,
                self.pipeline.engine,
                unit_topics,
                self.protection.seal,
                self.settings.kafka_client_options(),
            ),
        )
        if restored.notifications:
            log.warning(
                "the broker had lost the unit queues: %d notifications put back, the progress of %d readers",
                restored.notifications,
                restored.readers,
            )
        letters = await until_it_works(
            "restoring the dead letters",
            lambda: restore_dead_letters(
                self.broker,
                self.pipeline.engine,
                self.settings.dead_letter_topic,
                self.settings.kafka_client_options(),
            ),
        )
        if letters:
            log.warning("the broker had lost the dead-letter topic: %d dead letters put back", letters)
        retries = await until_it_works(
            "restoring the retry ladder",
            lambda: restore_retries(
                self.broker,
                self.pipeline.engine,
                sorted(self._retry_topics),
                self.settings.kafka_client_options(),
            ),
        )
        if retries:
            log.warning("the broker had lost the retry ladder: %d records put back on their tiers", retries)
        outbound = await until_it_works(
            "restoring the outbound topics",
            lambda: restore_outbound(
                self.broker,
                self.pipeline.engine,
                [self.settings.outbound_topic(agency) for agency in OUTBOUND_RECIPIENTS],
                self.protection.seal,
                self.settings.kafka_client_options(),
            ),
        )
        if outbound:
            log.warning("the broker had lost the outbound topics: %d records put back", outbound)

    async def handle_safely(
        self,
        messages: list[InboundMessage],
        states: dict[str, RetryState] | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        """`handle_batch` chunk by chunk, and if one fails in a way nobody foresaw, that chunk goes up the retry
        ladder rather than crash the agent (faust would acknowledge the batch and stop consuming)."""
        states = states or {}
        for chunk in in_chunks(messages, APPLY_CHUNK, published_ms=lambda message: message.timestamp_ms):
            await self._handle_chunk_safely(chunk, states, urgent)

    async def _handle_chunk_safely(
        self, messages: list[InboundMessage], states: dict[str, RetryState], urgent: bool
    ) -> None:
        try:
            await self.handle_batch(messages, states, urgent=urgent)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_without_values(
                log, f"a batch of {len(messages)} failed unexpectedly; it goes to retry", error
            )
            now = _utc_now()
            failure_class = type(error).__name__
            records = [
                self._retry(
                    m, states.get(token(m)) or RetryState(), TransientFailure(m, "worker", failure_class), now
                )
                for m in messages
            ]
            await self._send_until_it_works(records)

    async def handle_batch(
        self,
        messages: list[InboundMessage],
        states: dict[str, RetryState] | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        """Apply a batch; what fails for a passing reason goes up the retry ladder, in order per key. An ordinary
        batch steps aside between events for urgent work (`StoreGate.urgent_waiting`) and applies the rest after."""
        states = states or {}
        now = _utc_now()
        ready: list[InboundMessage] = []
        records: list[OutboundRecord] = []
        for message in messages:
            if self.book.is_head(message.key, token(message)):
                ready.append(message)
            else:  # an earlier event with its key waits in retry: it must not be overtaken
                records.append(self._behind(message, states.get(token(message)), now))
        should_yield = None if urgent else self.gate.urgent_waiting
        with metrics.PROCESSING_SECONDS.time():
            # Decoding and validating read nothing from the case store, so they happen outside the gate: urgent
            # work does not wait for an ordinary chunk's. An urgent batch's is done here, in the event loop's
            # thread: a few events' decoding waits for nothing, and a thread would first wait for the GIL (see
            # StoreGate.run).
            if urgent:
                valid, result = self._ingest(ready, states)
            else:
                valid, result = await asyncio.to_thread(self._ingest, ready, states)
            result = await self._apply(valid, states, should_yield, urgent, result)
        await self._settle(ready, result, states, now, records)
        while result.deferred:  # it stepped aside for urgent work: the rest goes on when its turn comes again
            handed = [ingested.message for ingested in result.deferred]
            with metrics.PROCESSING_SECONDS.time():
                result = await self._apply(result.deferred, states, should_yield, urgent)
            await self._settle(handed, result, states, now, [])

    def _ingest(
        self, messages: list[InboundMessage], states: dict[str, RetryState]
    ) -> tuple[list[IngestedEvent], BatchResult]:
        """Blocking: authenticate each message (who published it), then decode and validate the authentic ones
        (`Pipeline.ingest_all`). A message whose publisher is not proved is dead-lettered unread."""
        authentic: list[InboundMessage] = []
        rejected: list[tuple[InboundMessage, Unauthenticated]] = []
        for message in messages:
            try:
                self.protection.authenticate(message)
                authentic.append(message)
            except Unauthenticated as error:
                rejected.append((message, error))
        valid, result = self.pipeline.ingest_all(authentic, states)
        for message, refusal in rejected:
            source = self.settings.source_of_topic(message.topic) or "unknown"
            metrics.EVENTS.labels(source, "unknown", "dead_letter").inc()
            log.warning("dead letter from %s@%s: %s", message.topic, message.offset, refusal)
            result.dead_letters.append(self.pipeline.dead_letter_for(message, "ingest", refusal, states))
        return valid, result

    async def _apply(
        self,
        valid: list[IngestedEvent],
        states: dict[str, RetryState],
        should_yield: Callable[[], bool] | None,
        urgent: bool,
        result: BatchResult | None = None,
    ) -> BatchResult:
        if urgent:  # a few events' garbage: the next ordinary chunk's collection takes it
            apply_urgent = partial(self.pipeline.apply, urgent=True)
            return await self.gate.run(apply_urgent, valid, states, should_yield, result, urgent=True)
        return await self.gate.run(self._apply_and_collect, valid, states, should_yield, result)

    def _apply_and_collect(
        self,
        valid: list[IngestedEvent],
        states: dict[str, RetryState],
        should_yield: Callable[[], bool] | None,
        result: BatchResult | None,
    ) -> BatchResult:
        try:
            return self.pipeline.apply(valid, states, should_yield, result)
        finally:
            # What the chunk left in cycles (its handlers and loader; its records are unlinked, CaseFile.unlink) is
            # garbage now and still in the CPU's cache: see settle_garbage_collector. Not while urgent work waits
            # for the store: the next chunk's collection takes it.
            if not self.gate.urgent_waiting():
                gc.collect(1)

    async def _settle(
        self,
        handed: list[InboundMessage],
        result: BatchResult,
        states: dict[str, RetryState],
        now: datetime,
        records: list[OutboundRecord],
    ) -> None:
        """Send up the retry ladder, dead-letter and deliver what applying `handed` came to (`records`: those
        already decided)."""
        failed = {token(failure.message): failure for failure in result.transient}
        left = {token(message) for message in result.behind}
        left.update(token(ingested.message) for ingested in result.deferred)
        for message in handed:
            name = token(message)
            if name in failed:
                records.append(self._retry(message, states.get(name) or RetryState(), failed[name], now))
            elif name not in left:
                self.book.done(message.key, name)
        records.extend(self._behind(message, states.get(token(message)), now) for message in result.behind)
        await self._send_until_it_works([*records, *result.dead_letters])
        await self._deliver(result.notifications, result.published_at)
        await self._publish_outbound(result.outbound)

    async def handle_retries(self, tier: int, consumed: list[InboundMessage]) -> None:
        """Wait until each message's time has come, then apply it again (in the order consumed)."""
        opened: list[InboundMessage] = []
        for message in consumed:
            try:
                opened.append(self.protection.open_for_operations(message))
            except SealedRecordError as error:  # not the hub's: nobody can say what it is
                log.error("%s@%s cannot be opened (%s): dead letter", message.topic, message.offset, error)
                metrics.DEAD_LETTERS.labels(stage="retry", error_class=type(error).__name__).inc()
                await self._send_until_it_works(
                    [
                        dead_letter(
                            message,
                            self.settings.dead_letter_topic,
                            "retry",
                            type(error).__name__,
                            str(error),
                        )
                    ]
                )
        pending = [self.ladder.read(message) for message in opened]
        for retry in pending:
            first_failure = retry.state.first_failure_at or _utc_now()
            self.book.wait(retry.message.key, token(retry.message), tier, first_failure)
        while pending:
            wait = (pending[0].not_before - _utc_now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            now = _utc_now()
            due: list[RetryMessage] = []
            while pending and (not due or pending[0].not_before <= now):
                due.append(pending.pop(0))
            await self.handle_safely(
                [retry.message for retry in due], {token(retry.message): retry.state for retry in due}
            )
        await self._forget_retries(consumed)

    async def _forget_retries(self, consumed: list[InboundMessage]) -> None:
        """The tier has taken these records: applied, parked, dead-lettered or sent on up the ladder (which kept a
        copy of its own). A copy left behind by a failure here is put back at most once more, after a broker that
        lost its topics, and deduplicated by event id when applied."""
        taken: dict[tuple[str, int], int] = {}
        for message in consumed:
            where = (message.topic, message.partition)
            taken[where] = max(taken.get(where, -1), message.offset)
        try:
            for topic in {topic for topic, _ in taken}:
                by_partition = {partition: offset for (t, partition), offset in taken.items() if t == topic}
                await asyncio.to_thread(forget_retries, self.pipeline.engine, topic, by_partition)
        except Exception as error:
            log.warning(
                "could not forget the copies of %d retried record(s) (%s)",
                len(consumed),
                type(error).__name__,
            )

    def _behind(self, message: InboundMessage, state: RetryState | None, now: datetime) -> OutboundRecord:
        tier = self.book.head_tier(message.key) if message.key is not None else 1
        first_failure = (state.first_failure_at if state else None) or now
        self.book.wait(message.key, token(message), tier, first_failure)
        return self.ladder.record(message, state or RetryState(), tier, now, behind=True)

    def _retry(
        self, message: InboundMessage, state: RetryState, failure: TransientFailure, now: datetime
    ) -> OutboundRecord:
        """The next tier of the ladder, or a dead letter with its history once the ladder has run out."""
        state.failed(failure.stage, failure.error_class, now)
        tier = self.ladder.next_tier(state)
        if tier is not None:
            self.book.wait(message.key, token(message), tier, state.first_failure_at or now)
            metrics.RETRIES.labels(tier=str(tier)).inc()
            return self.ladder.record(message, state, tier, now)
        self.book.done(message.key, token(message))
        source = self.settings.source_of_topic(message.topic) or "unknown"
        metrics.EVENTS.labels(source, failure.event_type, "dead_letter").inc()
        metrics.DEAD_LETTERS.labels(stage=failure.stage, error_class=failure.error_class).inc()
        log.error(
            "%s@%s still failing after %d attempts: dead letter",
            message.topic,
            message.offset,
            state.attempts,
        )
        return dead_letter(
            message,
            self.settings.dead_letter_topic,
            failure.stage,
            failure.error_class,
            f"{failure.error_class} at stage {failure.stage} on each of {state.attempts} attempts; "
            "the retry ladder ran out",
            attempts=state.attempts,
            first_failure_at=state.first_failure_at,
            history=state.history_json(),
        )

    async def _deliver(
        self, notifications: list[Notification], published_at: dict[str, datetime] | None = None
    ) -> None:
        now = self.pipeline.clock()
        # Held releases wait for the outbox flush after their correction window.
        notifications = [n for n in notifications if n.release_after is None or n.release_after <= now]
        if not notifications:
            return
        records = [
            OutboundRecord(n.topic, n.key, n.payload, [(NOTIFICATION_ID_HEADER, n.notification_id.encode())])
            for n in notifications
        ]
        await self._send_until_it_works(records)
        delivered = _utc_now()
        for n in notifications:
            metrics.NOTIFICATIONS.labels(unit=n.unit_code, priority=n.priority, action=n.action).inc()
            if published_at and n.notification_id in published_at:
                latency = (delivered - published_at[n.notification_id]).total_seconds()
                metrics.END_TO_END_SECONDS.labels(priority=n.priority).observe(max(latency, 0.0))
        # Marked published by the next ordinary transaction, which is about to start while events flow.
        self.pipeline.published([n.notification_id for n in notifications], delivered)

    async def _publish_outbound(self, records: list[OutboxRecord]) -> None:
        """Records for other agencies, each sealed for its agency's key (hub/runtime/protection.py), marked
        published by the next transaction as notifications are."""
        if not records:
            return
        await self._send_until_it_works(
            [
                OutboundRecord(r.topic, r.key, r.payload, [(RECORD_TYPE_HEADER, r.record_type.encode())])
                for r in records
            ]
        )
        self.pipeline.published([], _utc_now(), [r.id for r in records if r.id is not None])

    async def flush_outbox(self) -> None:
        while True:
            # What this worker put on the queues since its last transaction is marked first: the sweep must not
            # send it again (nor what the sweep itself just sent).
            await until_it_works(
                "marking notifications published", lambda: self.gate.run(self.pipeline.confirm_published)
            )
            pending = await until_it_works(
                "reading the outbox", lambda: self.gate.run(self.pipeline.pending_outbox)
            )
            outbound = await until_it_works(
                "reading the outbound outbox", lambda: self.gate.run(self.pipeline.pending_outbound)
            )
            metrics.OUTBOX_PENDING.set(len(pending))
            if not pending and not outbound:
                return
            if pending:
                log.info("publishing %d notifications left in the outbox", len(pending))
                await self._deliver(pending)
            if outbound:
                log.info("publishing %d outbound records left in the outbox", len(outbound))
                await self._publish_outbound(outbound)

    async def keep_to_retention(self) -> None:
        """Run the retention schedule now and then, for as long as the worker runs. Every worker runs it: each step
        finds only what is still due, so two at once only risk an unclaimed parked event dead-lettered twice."""
        wait = RETENTION_FIRST_RUN_SECONDS
        while True:
            await asyncio.sleep(wait)
            wait = self.settings.retention_every_hours * 3600
            try:
                await self.run_retention()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log_without_values(log, "the retention schedule stopped; it is tried again later", error)
                wait = min(wait, RETENTION_RETRY_SECONDS)

    async def run_retention(self) -> None:
        """One run of the schedule, each batch's transaction a turn at the store gate, so urgent work waits for one
        short transaction at most; unclaimed parked events go to the dead-letter topic as the worker's own dead
        letters."""
        await self.retention.run(self._send_until_it_works, write=self.gate.run)

    async def watch_parked(self) -> None:
        # Counted, not loaded: during an agency's outage thousands may wait, and this runs every few seconds.
        waiting, parked_at = await until_it_works(
            "counting parked events", lambda: self.gate.run(self.pipeline.parked_summary)
        )
        oldest = (self.pipeline.clock() - parked_at).total_seconds() if parked_at is not None else 0.0
        metrics.PARKED_WAITING.set(waiting)
        metrics.PARKED_OLDEST_SECONDS.set(oldest)
        if oldest > self.settings.parked_alert_minutes * 60:
            log.warning(
                "%d parked event(s); the oldest has waited %.0f minutes for a case", waiting, oldest / 60
            )

    async def watch_counts(self) -> None:
        now = time.monotonic()
        with_pending = (
            self._pending_counted_at is None or now - self._pending_counted_at >= PENDING_COUNT_SECONDS
        )

        def count() -> Any:
            with Session(self.pipeline.engine) as session:
                return watched_counts(session, self.pipeline.clock(), with_pending=with_pending)

        # Not through the store gate: a count only reads (a WAL reader never waits for the writer, and SQLite
        # counts without the GIL), and counting the running timers of a large store takes most of a second, which
        # urgent work waiting at the gate would wait too.
        counts = await until_it_works("counting deadlines", lambda: asyncio.to_thread(count))
        for kind in TimerKind:
            metrics.TIMERS_OVERDUE.labels(timer=kind.value).set(counts.timers_overdue.get(kind.value, 0))
        if counts.timers_pending is not None:
            self._pending_counted_at = now
            for kind in TimerKind:
                metrics.TIMERS_PENDING.labels(timer=kind.value).set(counts.timers_pending.get(kind.value, 0))
        metrics.URGENT_UNACKNOWLEDGED.set(counts.urgent_unacknowledged)

    def watch_retries(self) -> None:
        for tier, waiting in self.book.waiting_by_tier(self.ladder.tiers).items():
            metrics.RETRY_WAITING.labels(tier=str(tier)).set(waiting)
        oldest = self.book.oldest_failure()
        metrics.RETRY_OLDEST_SECONDS.set((_utc_now() - oldest).total_seconds() if oldest else 0.0)

    def watch_lag(self) -> None:
        consumer = self.app.consumer
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            # faust keeps the committed offsets it manages; there is no public accessor.
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
            if highwater is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(highwater - (committed or 0), 0)
        lag.update(self.ordinary_lane.lag())
        lag.update(self.urgent_lane.lag())
        for topic, behind in lag.items():
            metrics.CONSUMER_LAG.labels(topic=topic).set(behind)

    async def _send_until_it_works(self, records: list[OutboundRecord]) -> None:
        await until_it_works("writing to the broker", lambda: self._send(records))

    async def _send(self, records: list[OutboundRecord]) -> None:
        """Write records, each sealed for the key that reads its topic, and wait until the broker has them all."""
        if not records:
            return
        records = self.protection.seal(records)
        producer = self.app.producer
        futures = [
            await producer.send(
                record.topic,
                record.key,
                record.value,
                partition=record.partition,
                timestamp=None,
                headers=record.headers,
            )
            for record in records
        ]
        written = await asyncio.gather(*futures)
        dead, retries = [], []
        for record, at in zip(records, written, strict=True):
            if record.topic == self.settings.dead_letter_topic:
                dead.append(WrittenRecord(record, at.partition, at.offset))
            elif record.topic in self._retry_topics:
                retries.append(WrittenRecord(record, at.partition, at.offset))
        if dead:
            await self._keep_copies("dead letter", keep_dead_letters, dead)
        if retries:
            await self._keep_copies("retry record", keep_retries, retries)

    async def _keep_copies(
        self, what: str, keep: Callable[[Engine, list[WrittenRecord]], None], written: list[WrittenRecord]
    ) -> None:
        """A copy in the case store, for a broker that loses its topics (hub/runtime/queues.py). The records are on
        their topics already, so a failure here (the database away: often why they are there) is only logged."""
        try:
            await asyncio.to_thread(keep, self.pipeline.engine, written)
        except Exception as error:
            log.warning("could not keep a copy of %d %s(s) (%s)", len(written), what, type(error).__name__)


def settle_garbage_collector() -> None:
    """Keep Python's cycle collector from walking the whole worker every few hundred allocations.

    By default it runs a young collection every 700 allocations and, now and then, walks every object the
    process holds (SQLAlchemy's, pydantic's and faust's machinery included); a batch builds thousands of ORM
    objects, so those walks would be a large part of the pipeline's time. What exists once the worker is set up
    lives as long as the process, so it is frozen out of the walks, and young collections wait for 50,000
    allocations; the older generations still follow every 10, so cyclic garbage is freed within seconds under
    load.

    The worker also collects after applying each chunk (`Worker._apply_and_collect`), when the chunk's objects
    have just become garbage and are still in the CPU's cache. Left to the threshold, a young collection would
    come in the middle of a chunk now and then, hold the GIL for tens of milliseconds, and walk older garbage
    from memory: collecting after each chunk costs a fraction of the CPU."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def run_worker(settings: Settings) -> None:
    """Run a worker in the foreground until SIGINT or SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings)
    asyncio.run(worker.prepare())
    settle_garbage_collector()
    try:
        faust.Worker(
            worker.app, loglevel=settings.log_level, redirect_stdouts=False
        ).execute_from_commandline()
    finally:
        # Stopped, not killed: what went to the queues since the last transaction is recorded, or the next start's
        # outbox sweep would send it again.
        try:
            worker.pipeline.confirm_published()
        except Exception as error:
            log.warning("could not mark the last notifications published (%s)", type(error).__name__)
