"""The ordinary lane on the real broker: it reads the inbound partitions it is told to follow (those whose
retries faust gave the worker), commits what it handled in its own group, and on a deployment upgraded from
the faust agent starts each partition where faust's group left it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hub.messages import InboundMessage
from hub.runtime.lanes import OrdinaryLane, ordinary_group
from hub.runtime.topics import ensure_topics
from hub.settings import AGENCY_SOURCES, Settings

WAIT_SECONDS = 30


async def _commit_as(broker: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _committed(broker: str, group: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), WAIT_SECONDS)
    except TimeoutError:
        pytest.fail(f"not within {WAIT_SECONDS}s: {what}")


@asynccontextmanager
async def running_lane(settings: Settings) -> AsyncIterator[tuple[OrdinaryLane, list[InboundMessage]]]:
    """An ordinary lane running until the block ends, and the messages it has handed over so far."""
    handled: list[InboundMessage] = []

    async def handle(messages: list[InboundMessage]) -> None:
        handled.extend(messages)

    lane = OrdinaryLane(settings, handle)
    running = asyncio.create_task(lane.run())
    try:
        yield lane, handled
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


@pytest.mark.asyncio
async def test_the_ordinary_lane_reads_the_partitions_it_follows_from_where_faust_left_them(
    broker: str,
) -> None:
    settings = Settings(
        topic_prefix=f"lane-{uuid.uuid4().hex[:8]}.", app_id=f"lane-{uuid.uuid4().hex[:8]}", broker=broker
    )
    topic = settings.inbound_topic("prison")
    await ensure_topics(broker, [settings.inbound_topic(source) for source in AGENCY_SOURCES], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        for number in range(10):
            for partition in (0, 1):
                await producer.send_and_wait(topic, f"{partition}:{number}".encode(), partition=partition)
    finally:
        await producer.stop()
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    # An upgraded deployment: faust's agent had handled the first six events of partition 0.
    await _commit_as(broker, settings.app_id, {first: 6})

    async with running_lane(settings) as (lane, handled):
        lane.follow([0])
        await _until(lambda: len(handled) >= 4, "partition 0 read from faust's offset")
        await asyncio.sleep(0.5)  # nothing else may come
        assert [(m.partition, m.offset, m.value) for m in handled] == [
            (0, offset, f"0:{offset}".encode()) for offset in range(6, 10)
        ]
        assert lane.ready

        handled.clear()
        # faust's group moved: partition 1's retries are this worker's now, partition 0's not.
        lane.follow([1])
        await _until(lambda: len(handled) >= 10, "partition 1 read from its start")
        assert [(m.partition, m.offset) for m in handled] == [(1, offset) for offset in range(10)]

    group = ordinary_group(settings.app_id)
    assert await _committed(broker, group, first) == 10
    assert await _committed(broker, group, second) == 10
    assert await _committed(broker, settings.app_id, first) == 6  # faust's group is only read


@pytest.mark.asyncio
async def test_the_ordinary_lane_hands_a_backlog_over_in_publication_order_across_topics(broker: str) -> None:
    # Small batches: a partition holding a batch is not fetched until some of it is handed over.
    settings = Settings(
        topic_prefix=f"order-{uuid.uuid4().hex[:8]}.",
        app_id=f"order-{uuid.uuid4().hex[:8]}",
        broker=broker,
        batch_size=20,
    )
    topics = [settings.inbound_topic(source) for source in AGENCY_SOURCES]
    await ensure_topics(broker, topics, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5)
    await producer.start()
    try:
        # Each agency's events published in turn, as a backlog waiting for the lane.
        sent = [
            await producer.send(topic, f"{topic}:{number}".encode(), partition=number % 2)
            for topic in topics[:4]
            for number in range(100)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    async with running_lane(settings) as (lane, handled):
        lane.follow([0, 1])
        await _until(lambda: len(handled) >= 400, "the backlog handed over")
        await asyncio.sleep(0.5)  # nothing more may come

    assert sorted(m.value for m in handled) == sorted(
        f"{t}:{n}".encode() for t in topics[:4] for n in range(100)
    )
    published = [m.timestamp_ms or 0 for m in handled]
    assert published == sorted(published), "handed over out of publication order"
