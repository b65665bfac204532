"""The stream worker: a faust app whose one agent feeds batches of agency messages to the pipeline.

faust acknowledges a batch once the loop body has run, even if it raised, so the body never raises: every
message ends as notifications on a unit queue, a parked event, or a dead letter before its batch is
acknowledged. A transient failure (database, broker) retries the batch in place with backoff; duplicates
that a retry or a redelivery causes are absorbed by event-id de-duplication and notification ids.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.avro import hub_codec
from connectors.registry import registry_for
from hub import metrics
from hub.messages import InboundMessage, OutboundRecord
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import AGENCY_SOURCES, Settings
from hub.store.models import Notification
from hub.store.repository import make_engine
from hub.topics import ensure_topics, hub_topics

log = logging.getLogger(__name__)

RETRY_FIRST_DELAY_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 15.0


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


async def until_it_works(what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
    """Retry a transient failure with capped exponential backoff and jitter, for as long as it takes."""
    delay = RETRY_FIRST_DELAY_SECONDS
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            metrics.TRANSIENT_RETRIES.inc()
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(error).__name__, error, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)


class Worker:
    """Owns the faust app and the pipeline; `app` is what `faust.Worker` runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker = settings.resolved_broker()
        self.units = load_units(settings)
        self.pipeline = Pipeline(
            settings,
            make_engine(settings.resolved_database_url),
            hub_codec(registry=registry_for(settings.schema_registry_url)),
            self.units,
        )
        self.consuming = False
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
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            datadir=str(settings.data_dir / "faust"),
        )
        self._define()

    def _define(self) -> None:
        app = self.app
        settings = self.settings
        inbound = app.topic(
            *(settings.inbound_topic(source) for source in AGENCY_SOURCES),
            key_serializer="raw",
            value_serializer="raw",
        )

        @app.agent(inbound, name="route_agency_events")
        async def route_agency_events(stream: faust.StreamT) -> None:
            async for events in stream.take_events(settings.batch_size, within=settings.batch_wait_seconds):
                await self.handle_batch([_inbound(event.message) for event in events])

        @app.timer(interval=settings.timer_check_seconds)
        async def deadlines_and_holds() -> None:
            # Every worker runs this; timers and the outbox are rows, so two workers at once only risk a
            # duplicate on the queue, which the stable notification id absorbs.
            fired = await until_it_works(
                "firing due timers", lambda: asyncio.to_thread(self.pipeline.fire_due_timers)
            )
            await self._deliver(fired)
            # Notifications committed before a crash, or released from their correction hold.
            await self.flush_outbox()
            await self.watch_parked()

        @app.on_rebalance_complete.connect
        async def _consuming(sender: Any, *_: Any, **__: Any) -> None:
            self.consuming = True

        @app.on_partitions_revoked.connect
        async def _paused(sender: Any, *_: Any, **__: Any) -> None:
            self.consuming = False

        @app.page("/health")
        async def health(web: Any, request: Any) -> Any:
            status = 200 if self.consuming else 503
            return web.json({"status": "consuming" if self.consuming else "starting"}, status=status)

        @app.page("/metrics")
        async def prometheus(web: Any, request: Any) -> Any:
            return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def prepare(self) -> None:
        """Create every topic the hub uses before consuming."""
        names = hub_topics(self.settings, [unit.code for unit in self.units.units])
        await until_it_works(
            "creating topics",
            lambda: ensure_topics(
                self.broker, names, self.settings.topic_partitions, self.settings.topic_replication
            ),
        )

    async def handle_batch(self, messages: list[InboundMessage]) -> None:
        with metrics.BATCH_SECONDS.time():
            result = await until_it_works(
                "processing a batch", lambda: asyncio.to_thread(self.pipeline.process, messages)
            )
            await until_it_works("writing dead letters", lambda: self._send(result.dead_letters))
            await self._deliver(result.notifications)

    async def _deliver(self, notifications: list[Notification]) -> None:
        now = self.pipeline.clock()
        # Held releases wait for the outbox flush after their correction window.
        notifications = [n for n in notifications if n.release_after is None or n.release_after <= now]
        if not notifications:
            return
        records = [OutboundRecord(n.topic, n.key, n.payload) for n in notifications]
        await until_it_works("delivering notifications", lambda: self._send(records))
        for n in notifications:
            metrics.NOTIFICATIONS.labels(unit=n.unit_code, priority=n.priority, action=n.action).inc()
        ids = [n.notification_id for n in notifications]
        await until_it_works(
            "confirming the outbox", lambda: asyncio.to_thread(self.pipeline.confirm_published, ids)
        )

    async def flush_outbox(self) -> None:
        while True:
            pending = await until_it_works(
                "reading the outbox", lambda: asyncio.to_thread(self.pipeline.pending_outbox)
            )
            metrics.OUTBOX_PENDING.set(len(pending))
            if not pending:
                return
            log.info("publishing %d notifications left in the outbox", len(pending))
            await self._deliver(pending)

    async def watch_parked(self) -> None:
        parked = await until_it_works(
            "reading parked events", lambda: asyncio.to_thread(self.pipeline.parked_events)
        )
        now = self.pipeline.clock()
        oldest = (now - parked[0].parked_at).total_seconds() if parked else 0.0
        metrics.PARKED_WAITING.set(len(parked))
        metrics.PARKED_OLDEST_SECONDS.set(oldest)
        if oldest > self.settings.parked_alert_minutes * 60:
            log.warning(
                "%d parked event(s); the oldest has waited %.0f minutes for a case", len(parked), oldest / 60
            )

    async def _send(self, records: list[OutboundRecord]) -> None:
        """Write records and wait until the broker has them all."""
        if not records:
            return
        producer = self.app.producer
        futures = [
            await producer.send(
                record.topic, record.key, record.value, partition=None, timestamp=None, headers=record.headers
            )
            for record in records
        ]
        await asyncio.gather(*futures)


def run_worker(settings: Settings) -> None:
    """Run a worker in the foreground until SIGINT or SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings)
    asyncio.run(worker.prepare())
    faust.Worker(worker.app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()
