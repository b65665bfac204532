"""Measuring a stream end to end: publishing prepared events with the time each was handed to the producer,
reading the far end (unit queues, or the bare loop's output) with the time each record arrived, knowing when the
worker has consumed everything, and turning the two times into latencies."""

from __future__ import annotations

import asyncio
import gc
import io
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from hub.tools.bench.events import PreparedEvent
from hub.tools.bench.options import EVENT_HEADER


class Arrival(NamedTuple):
    """One record read at the far end."""

    at: float  # perf_counter when consumed
    timestamp_ms: int  # the record's own timestamp: when the producer that wrote it took it (wall clock)
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Arrivals:
    """What came out of the far end, with when it was consumed (decoded after the run, off the clock).

    Kept as plain tuples, not the consumer's record objects nor `Arrival`s: a long run keeps hundreds of thousands,
    and Python's cycle collector walks every object that can hold others, pausing the reader (and the paced
    publisher beside it) for longer the more there are. It leaves out exact tuples of plain values."""

    _rows: list[tuple[float, int, bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=list)
    last: float = 0.0
    # Converts a record's wall-clock timestamp to the perf_counter that stamps arrivals and publishing.
    wall_minus_perf: float = field(default_factory=lambda: time.time() - time.perf_counter())

    def add(self, at: float, record: Any) -> None:
        self._rows.append((at, record.timestamp, record.value, tuple(record.headers or ())))
        self.last = at

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Arrival]:
        return map(Arrival._make, self._rows)


@dataclass
class Outcome:
    """Latencies (ms) of one measured stream, per notification (hub) or per message (bare loop)."""

    events: int
    first_publish: float
    last_arrival: float
    latencies: list[float]  # ordinary events
    urgent_latencies: list[float]
    results: int  # notifications (hub) or output messages (bare loop)
    complete: bool
    publish_seconds: float = 0.0
    # Each latency's first part: from publishing until the worker handed the notification to its producer.
    urgent_until_sent: list[float] = field(default_factory=list)
    until_sent: list[float] = field(default_factory=list)  # ordinary events
    # Notifications read again after their first copy (the same notification id): the outbox's sweep, or an event
    # applied twice.
    duplicates: int = 0

    @property
    def seconds(self) -> float:
        return max(self.last_arrival - self.first_publish, 1e-9)

    @property
    def eps(self) -> float:
        return self.events / self.seconds


class Publisher:
    """Sends prepared events to a set of topics, recording when each was handed to the producer."""

    def __init__(self, address: str, prefix: str, *, client_options: Mapping[str, Any] | None = None) -> None:
        from aiokafka import AIOKafkaProducer

        self.prefix = prefix
        self.sent: dict[str, float] = {}
        self.urgent: set[str] = set()
        self.offsets: dict[tuple[str, int], int] = {}
        self._pending: list[Any] = []
        self.producer = AIOKafkaProducer(
            bootstrap_servers=address,
            acks="all",
            linger_ms=0,
            max_batch_size=256 * 1024,
            **(client_options or {}),
        )

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(self, event: PreparedEvent) -> None:
        self.sent[event.event_id] = time.perf_counter()
        if event.urgent:
            self.urgent.add(event.event_id)
        future = await self.producer.send(
            self.prefix + event.topic,
            event.value,
            key=event.key,
            headers=[(EVENT_HEADER, event.event_id.encode()), *event.headers],
        )
        self._pending.append(future)

    async def settle(self) -> None:
        """Wait for the broker to have everything sent so far; remember how far each partition goes."""
        for metadata in await asyncio.gather(*self._pending):
            end = (metadata.topic, metadata.partition)
            self.offsets[end] = max(self.offsets.get(end, 0), metadata.offset + 1)
        self._pending.clear()

    async def send_all(self, events: Sequence[PreparedEvent]) -> float:
        started = time.perf_counter()
        for event in events:
            await self.send(event)
        await self.settle()
        return time.perf_counter() - started

    async def send_paced(
        self, events: Sequence[PreparedEvent], rate: float, stop: asyncio.Event | None = None
    ) -> None:
        """Offer events at `rate` per second (catching up if the loop falls behind), until done or stopped."""
        started = time.perf_counter()
        for index, event in enumerate(events):
            if stop is not None and stop.is_set():
                break
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
            await self.send(event)
            if index % 100 == 99:
                await self.settle()
        await self.settle()


# Tansu answers a fetch only when its wait is over, even if data arrives sooner, so the reader's wait adds about
# half of itself to each latency it measures. But every fetch names each unit queue's partitions, and over a
# long drain Tansu's cost of answering grows (why is not known): with a much shorter wait the broker takes most
# of a core, the machine runs out of CPU, and notifications the worker sent promptly are read seconds later;
# with a much longer one the wait itself shows in every latency.
READER_FETCH_WAIT_MS = 20


class QueueWatcher:
    """Consumes the far end (unit queues, or the bare loop's output) from the beginning, stamping arrivals."""

    def __init__(
        self, address: str, topics: list[str], *, client_options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        self.topics = topics
        self.client_options = dict(client_options or {})
        self.arrivals = Arrivals()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> QueueWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 30)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.address,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=READER_FETCH_WAIT_MS,
            **self.client_options,
        )
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            for topic in self.topics:
                found = None
                for _ in range(50):
                    found = consumer.partitions_for_topic(topic)
                    if found:
                        break
                    await consumer.topics()
                    await asyncio.sleep(0.1)
                partitions.extend(TopicPartition(topic, p) for p in sorted(found or ()))
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._ready.set()
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=50, max_records=5000)
                at = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        self.arrivals.add(at, record)
        finally:
            await consumer.stop()


class GroupProgress:
    """How far the worker's consumer groups have committed, to tell when it has consumed everything published.
    Each partition is read by one of the groups (the urgent lane has its own), so the furthest commit counts."""

    def __init__(
        self, address: str, groups: Sequence[str], *, client_options: Mapping[str, Any] | None = None
    ) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        self.groups = groups
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=address, request_timeout_ms=10000, **(client_options or {})
        )

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.admin.close()

    async def caught_up(self, ends: dict[tuple[str, int], int]) -> bool:
        from aiokafka import TopicPartition

        partitions = [TopicPartition(t, p) for t, p in ends]
        furthest: dict[TopicPartition, int] = {}
        for group in self.groups:
            try:
                committed = await self.admin.list_consumer_group_offsets(group, partitions=partitions)
            except Exception:  # the group may not have committed yet
                continue
            for tp, meta in committed.items():
                if meta is not None and meta.offset > furthest.get(tp, -1):
                    furthest[tp] = meta.offset
        return all(furthest.get(TopicPartition(t, p), -1) >= end for (t, p), end in ends.items())


async def wait_until_done(
    watcher: QueueWatcher,
    done: Any,
    timeout: float,
    idle: float,
) -> bool:
    """Until `done()` says so and nothing has arrived for `idle` seconds, or the timeout; True if done."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        quiet = time.perf_counter() - max(watcher.arrivals.last, 0.0) >= idle
        if quiet and await done():
            return True
        await asyncio.sleep(0.2)
    return False


@dataclass
class NotificationTimes:
    """What `notification_latencies` found (ms), for notifications caused by the events the bench published."""

    latencies: list[float] = field(default_factory=list)  # ordinary events
    urgent: list[float] = field(default_factory=list)
    # The part of each urgent latency spent before the worker handed the notification to its producer (the
    # record's timestamp); the rest is the broker and the bench's own reader.
    urgent_until_sent: list[float] = field(default_factory=list)
    until_sent: list[float] = field(default_factory=list)  # the same for ordinary events
    notifications: int = 0
    duplicates: int = 0  # copies read after the first of the same notification id
    last: float = 0.0

    def outcome(
        self, events: int, first_publish: float, complete: bool, publish_seconds: float = 0.0
    ) -> Outcome:
        return Outcome(
            events,
            first_publish,
            self.last,
            self.latencies,
            self.urgent,
            self.notifications,
            complete,
            publish_seconds,
            self.urgent_until_sent,
            self.until_sent,
            self.duplicates,
        )


def notification_latencies(arrivals: Arrivals, publisher: Publisher, opener: Any) -> NotificationTimes:
    """Latencies of the notifications caused by the events the bench published; a notification republished by
    the outbox counts once. `opener` holds every unit's key: the bench reads all the queues."""
    from fastavro import schemaless_reader

    from schemas import notification_schema

    parsed = notification_schema().parsed
    seen: set[str] = set()
    times = NotificationTimes()
    for arrival in arrivals:
        # The notification schema is a record: fastavro reads it as a dict.
        notification = cast(
            "dict[str, Any]", schemaless_reader(io.BytesIO(opener.open(arrival.value)[10:]), parsed, None)
        )
        if notification["notification_id"] in seen:
            times.duplicates += 1
            continue
        seen.add(notification["notification_id"])
        sources = notification["source_event_ids"] or []
        if not sources or sources[0] not in publisher.sent:
            continue
        event_id = sources[0]
        sent = publisher.sent[event_id]
        latency = (arrival.at - sent) * 1000
        until_sent = arrival.timestamp_ms - (sent + arrivals.wall_minus_perf) * 1000
        if event_id in publisher.urgent:
            times.urgent.append(latency)
            times.urgent_until_sent.append(until_sent)
        else:
            times.latencies.append(latency)
            times.until_sent.append(until_sent)
        times.last = max(times.last, arrival.at)
    times.notifications = len(seen)
    return times


def bare_latencies(arrivals: Arrivals, publisher: Publisher) -> tuple[list[float], float]:
    latencies = []
    last = 0.0
    for arrival in arrivals:
        event_id = dict(arrival.headers).get(EVENT_HEADER, b"").decode()
        if event_id in publisher.sent:
            latencies.append((arrival.at - publisher.sent.pop(event_id)) * 1000)
            last = max(last, arrival.at)
    return latencies, last


async def measured(measure: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """Run a measurement with what was prepared for it (hundreds of thousands of encoded events) frozen out of
    the cycle collector's walks: otherwise each full walk pauses the bench's reader and publisher, and the pause
    is counted as the hub's latency."""
    gc.collect()
    gc.freeze()
    try:
        return await measure()
    finally:
        gc.unfreeze()
