"""The agency lanes: the consumers that take agency events from their topics to the worker's pipeline.

Both lanes read with an aiokafka consumer of their own, hand each fetched batch to the worker, and commit its
offsets once the batch is handled, so an event is handled at least once; the pipeline's event-id
de-duplication absorbs a second time.

- **The ordinary lane** (`agency.<source>.events`) reads its topics directly, not through a faust agent: faust
  hands every record through its consumer thread, its conductor and a stream buffer, and tracks an
  acknowledgement for each, which costs the worker CPU on every event, and its consumer thread competes for the
  GIL with urgent work while a backlog drains. It reads the partitions whose numbers faust's consumer group gave
  this worker for the retry ladder (faust assigns the same partition numbers of its topics to one worker).
  Retry records go to the partition their event came from and the order book that keeps a key's events in order
  across retries is per worker, so the worker that reads an inbound partition must be the one that reads its
  retries.
- **The urgent lane** (`agency.<source>.urgent`) has a consumer group of its own. A faust stream waits when a
  stream's buffer is full, so urgent events fetched beside a draining backlog would wait for the backlog too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from hub.messages import InboundMessage
from hub.runtime.in_place import until_it_works
from hub.runtime.publication_order import PublicationOrder
from hub.settings import AGENCY_SOURCES, Settings

log = logging.getLogger(__name__)

# Urgent events are few: small batches, and a short fetch wait so one is picked up at once.
URGENT_BATCH_SIZE = 50
URGENT_FETCH_WAIT_MS = 10
# How long one wait for records lasts before the ordinary lane looks at faust's assignment again.
POLL_TIMEOUT_MS = 1000
# Longest the ordinary lane waits for a partition that may hold an earlier record before it hands over what it
# holds, in publication order, anyway (hub/runtime/publication_order.py); several fetch waits (HUB_FETCH_WAIT_MS),
# since a fetch is answered within one.
ORDER_WAIT_SECONDS = 0.5

Handle = Callable[[list[InboundMessage]], Awaitable[None]]


def urgent_group(app_id: str) -> str:
    return f"{app_id}-urgent"


def ordinary_group(app_id: str) -> str:
    """Where the ordinary lane keeps its offsets: a group of its own, apart from faust's (`app_id`), which keeps
    the retry tiers' offsets."""
    return f"{app_id}-ordinary"


async def unapplied(bootstrap: str, settings: Settings) -> int:
    """Agency events on the broker that the lanes have not yet handled (and committed): what `hub up` waits for
    before it stops an embedded broker, which would lose them."""
    from aiokafka.admin import AIOKafkaAdminClient

    options = settings.kafka_client_options()
    lanes = {
        ordinary_group(settings.app_id): [settings.inbound_topic(s) for s in AGENCY_SOURCES],
        urgent_group(settings.app_id): [settings.urgent_topic(s) for s in AGENCY_SOURCES],
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await admin.start()
    await consumer.start()
    try:
        await consumer.topics()
        waiting = 0
        for group, topics in lanes.items():
            partitions = [
                TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            for partition, end in ends.items():
                done = committed.get(partition)
                waiting += end - (done.offset if done is not None and done.offset >= 0 else 0)
        return waiting
    finally:
        await consumer.stop()
        await admin.close()


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


class Lane:
    """Fetch, hand over, commit, until cancelled. `handle` must not raise (the worker's handle_safely never
    does)."""

    name = "lane"

    def __init__(self, settings: Settings, handle: Handle, topics: list[str], batch_size: int) -> None:
        self.settings = settings
        self.handle = handle
        self.topics = topics
        self.batch_size = batch_size
        self.consumer: AIOKafkaConsumer | None = None
        self._next_offsets: dict[TopicPartition, int] = {}
        self.ready = False  # reading what it should (the worker's health waits for it)

    def _new_consumer(self, group_id: str, fetch_wait_ms: int, *topics: str) -> AIOKafkaConsumer:
        settings = self.settings
        return AIOKafkaConsumer(
            *topics,
            bootstrap_servers=settings.resolved_broker(),
            group_id=group_id,
            client_id=f"{settings.app_id}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_wait_ms,
            session_timeout_ms=int(settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(max(1.0, settings.session_timeout_seconds / 5) * 1000),
            **settings.kafka_client_options(),
        )

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> list[ConsumerRecord]:
        """The records to hand over next, as fetched."""
        fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=self.batch_size)
        return [record for records in fetched.values() for record in records]

    async def _handle_next(self, consumer: AIOKafkaConsumer) -> None:
        """One batch: handed over, then its offsets committed."""
        records = await self._next_batch(consumer)
        if not records:
            return
        await self.handle([inbound(record) for record in records])
        handled = {TopicPartition(record.topic, record.partition): record.offset + 1 for record in records}
        self._next_offsets.update(handled)
        try:
            await consumer.commit(handled)
        except (CommitFailedError, KafkaError) as error:
            # A rebalance took the partitions (the urgent lane's group), or the broker failed: whoever reads them
            # next handles these again, and de-duplicates.
            log.warning("%s lane: could not commit (%s)", self.name, type(error).__name__)

    def lag(self) -> dict[str, int]:
        """Events waiting on each topic: the end of each partition less the next offset to handle (known once
        the partition has given a record; 0 before)."""
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


class UrgentLane(Lane):
    """Urgent event types, in a consumer group of their own (each urgent topic has one partition)."""

    name = "urgent"

    def __init__(self, settings: Settings, handle: Handle) -> None:
        topics = [settings.urgent_topic(source) for source in AGENCY_SOURCES]
        super().__init__(settings, handle, topics, URGENT_BATCH_SIZE)

    async def run(self) -> None:
        group = urgent_group(self.settings.app_id)
        self.consumer = consumer = self._new_consumer(group, URGENT_FETCH_WAIT_MS, *self.topics)
        await until_it_works("starting the urgent lane", consumer.start)
        try:
            while True:
                await self._handle_next(consumer)
                self.ready = self.ready or bool(consumer.assignment())
        finally:
            await consumer.stop()


class OrdinaryLane(Lane):
    """Every other agency event, from the inbound partitions whose numbers faust gave this worker (`follow`)."""

    name = "ordinary"

    def __init__(self, settings: Settings, handle: Handle) -> None:
        topics = [settings.inbound_topic(source) for source in AGENCY_SOURCES]
        super().__init__(settings, handle, topics, settings.batch_size)
        self._wanted: set[TopicPartition] | None = None  # to take when the current batch is done
        self._changed = asyncio.Event()
        self.order = PublicationOrder(ORDER_WAIT_SECONDS)

    def follow(self, partitions: Iterable[int]) -> None:
        """Read these partition numbers of every inbound topic from the end of the batch being handled (none:
        stop reading, as faust's group rebalances)."""
        self._wanted = {TopicPartition(topic, number) for topic in self.topics for number in partitions}
        self._changed.set()

    async def run(self) -> None:
        settings = self.settings
        self.consumer = consumer = self._new_consumer(ordinary_group(settings.app_id), settings.fetch_wait_ms)
        await until_it_works("starting the ordinary lane", consumer.start)
        try:
            while True:
                if self._wanted is not None:
                    wanted, self._wanted = self._wanted, None
                    await until_it_works("taking the ordinary lane's partitions", partial(self._take, wanted))
                    self.ready = True
                if consumer.assignment():
                    await self._handle_next(consumer)
                else:
                    self._changed.clear()
                    if self._wanted is None:
                        await self._changed.wait()
        finally:
            await consumer.stop()

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> list[ConsumerRecord]:
        """The records to hand over next, in publication order across the lane's partitions
        (hub/runtime/publication_order.py)."""
        order = self.order
        due = order.seconds_until_due()
        # While records wait for another partition's fetch, look again after each fetch: a fetch that brings no
        # record does not wake getmany, but it may show that partition has nothing earlier.
        wait_ms = POLL_TIMEOUT_MS if due is None else min(self.settings.fetch_wait_ms, due * 1000)
        order.add(await consumer.getmany(timeout_ms=wait_ms), consumer)
        partitions = sorted(consumer.assignment())
        for tp in order.needs_start(consumer, partitions):
            order.starts_at(tp, await consumer.position(tp))  # known (it was fetched): no wait
        full = order.holding_at_least(self.batch_size)
        paused = consumer.paused()
        if full - paused:
            consumer.pause(*(full - paused))
        if paused - full:
            consumer.resume(*(paused - full))
        return order.take(self.batch_size, consumer, partitions)

    async def _take(self, wanted: set[TopicPartition]) -> None:
        consumer = self.consumer
        assert consumer is not None
        await consumer.topics()  # partitions_for_topic answers from metadata this fetches
        existing = {tp for tp in wanted if tp.partition in (consumer.partitions_for_topic(tp.topic) or ())}
        if existing == consumer.assignment():
            return
        # Asked before the assignment changes, so that a failure here is retried with nothing taken yet.
        starts = await self._where_faust_stopped(consumer, existing - consumer.assignment())
        consumer.assign(sorted(existing))
        self.order.restart()
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
            log.info("ordinary lane: %s[%d] starts at faust's offset %d", tp.topic, tp.partition, offset)
        for tp in set(self._next_offsets) - existing:
            del self._next_offsets[tp]
        numbers = sorted({tp.partition for tp in existing})
        log.info("ordinary lane: reading partitions %s of %d topics", numbers, len(self.topics))

    async def _where_faust_stopped(
        self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """A deployment upgraded from a hub whose faust agent read these topics: a partition the lane has no
        offset for starts where faust's group left it, not at the start of the topic's retention (each replayed
        event would be de-duplicated, but a week of them takes hours)."""
        unread = [tp for tp in partitions if await consumer.committed(tp) is None]
        if not unread:
            return {}
        earlier = self._new_consumer(self.settings.app_id, self.settings.fetch_wait_ms)
        try:
            await earlier.start()
            offsets = {tp: await earlier.committed(tp) for tp in unread}
        finally:
            await earlier.stop()
        return {tp: offset for tp, offset in offsets.items() if offset is not None}
