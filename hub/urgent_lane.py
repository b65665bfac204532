"""The urgent lane's consumer: urgent events reach the pipeline while a backlog of ordinary ones drains.

The urgent topics (`agency.<source>.urgent`) are read by a consumer of their own, in a consumer group of their
own, not by the faust app. faust's consumer hands every fetched record to its stream in turn and waits when a
stream's buffer is full, so while the main lane drained a backlog, urgent events fetched beside it waited for
the backlog too (measured: 10 s at the start of an 8,000-event drain). Offsets are committed after a batch is
handled, so an event is handled at least once; the pipeline's event-id de-duplication absorbs a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from hub.in_place import until_it_works
from hub.messages import InboundMessage
from hub.settings import AGENCY_SOURCES, Settings

log = logging.getLogger(__name__)

# Urgent events are few: small batches, and a short fetch wait so one is picked up at once.
URGENT_BATCH_SIZE = 50
FETCH_MAX_WAIT_MS = 10


def urgent_group(app_id: str) -> str:
    return f"{app_id}-urgent"


def inbound(record: ConsumerRecord) -> InboundMessage:
    return InboundMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=list(record.headers or []),
    )


class UrgentLane:
    def __init__(self, settings: Settings, handle: Callable[[list[InboundMessage]], Awaitable[None]]) -> None:
        self.settings = settings
        self.handle = handle
        self.topics = [settings.urgent_topic(source) for source in AGENCY_SOURCES]
        self.consumer: AIOKafkaConsumer | None = None
        self._next_offsets: dict[TopicPartition, int] = {}
        self.ready = False  # joined its group and was given partitions (the worker's health waits for it)

    async def run(self) -> None:
        """Consume until cancelled. `handle` must not raise (the worker's handle_safely never does)."""
        settings = self.settings
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=settings.resolved_broker(),
            group_id=urgent_group(settings.app_id),
            client_id=f"{settings.app_id}-urgent",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            session_timeout_ms=int(settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(max(1.0, settings.session_timeout_seconds / 5) * 1000),
        )
        await until_it_works("starting the urgent lane", self.consumer.start)
        try:
            while True:
                fetched = await self.consumer.getmany(timeout_ms=1000, max_records=URGENT_BATCH_SIZE)
                self.ready = self.ready or bool(self.consumer.assignment())
                messages = [inbound(record) for records in fetched.values() for record in records]
                if not messages:
                    continue
                await self.handle(messages)
                for tp, records in fetched.items():
                    self._next_offsets[tp] = records[-1].offset + 1
                try:
                    await self.consumer.commit()
                except (CommitFailedError, KafkaError) as error:
                    # A rebalance took the partitions: their new owner handles these again, and de-duplicates.
                    log.warning("urgent lane: could not commit (%s)", type(error).__name__)
        finally:
            await self.consumer.stop()

    def lag(self) -> dict[str, int]:
        """Events waiting on each urgent topic: the end of each partition less the next offset to handle (known
        once the partition has given a record; 0 before)."""
        consumer = self.consumer
        if consumer is None:
            return {}
        behind: dict[str, int] = {}
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            behind.setdefault(tp.topic, 0)
            if end is not None and tp in self._next_offsets:
                behind[tp.topic] += max(end - self._next_offsets[tp], 0)
        return behind
