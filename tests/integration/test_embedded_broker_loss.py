"""What the embedded broker (Tansu, topics in memory) would lose when it stops: the retry ladder is put back from
the case store, on the same tiers and partitions, as the worker wrote it, and forgotten once a tier takes it; and
`hub up` knows how many agency events the worker has not applied yet, so it can let the worker drain them first."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.messages import OutboundRecord
from hub.runtime.queues import WrittenRecord, forget_retries, keep_retries, restore_retries
from hub.runtime.topics import ensure_topics
from hub.store.engine import make_engine
from hub.store.models import RetryCopy
from tests.integration.waiting import read_topic


def test_a_lost_retry_tier_is_put_back_on_its_partitions_and_forgotten_once_taken(
    broker: str, tmp_path: Path
) -> None:
    tier_1, tier_2 = (f"t{uuid.uuid4().hex[:8]}.hub.retry.{tier}" for tier in (1, 2))
    asyncio.run(ensure_topics(broker, [tier_1, tier_2], 4))
    engine = make_engine(
        f"sqlite:///{tmp_path / 'hub.db'}"
    )  # retry copies are sealed already, for operations
    waiting = [
        WrittenRecord(
            OutboundRecord(tier_1, b"A1234BC", b"sealed one", [("hub.retry.attempts", b"1")], 2), 2, 7
        ),
        WrittenRecord(
            OutboundRecord(tier_1, b"A1234BC", b"sealed two", [("hub.retry.behind", b"1")], 2), 2, 8
        ),
        WrittenRecord(OutboundRecord(tier_2, b"B9876ZY", b"sealed three", [], 1), 1, 3),
    ]
    try:
        keep_retries(engine, waiting)
        # The broker came back empty: each record goes back to its tier and partition, in order.
        assert asyncio.run(restore_retries(broker, engine, [tier_1, tier_2], {})) == 3
        on_tier_1 = read_topic(broker, tier_1)
        assert [(r.partition, r.value, list(r.headers)) for r in on_tier_1] == [
            (2, b"sealed one", [("hub.retry.attempts", b"1")]),
            (2, b"sealed two", [("hub.retry.behind", b"1")]),
        ]
        assert [(r.partition, r.value) for r in read_topic(broker, tier_2)] == [(1, b"sealed three")]
        # Not put back twice: the tiers hold records now.
        assert asyncio.run(restore_retries(broker, engine, [tier_1, tier_2], {})) == 0
        with Session(engine) as session:
            copies = session.scalars(select(RetryCopy).order_by(RetryCopy.id)).all()
            assert [(c.topic, c.partition, c.offset) for c in copies] == [
                (tier_1, 2, 0),
                (tier_1, 2, 1),
                (tier_2, 1, 0),
            ]
        # Tier 1 takes its first record: only that copy goes.
        forget_retries(engine, tier_1, {2: 0})
        with Session(engine) as session:
            assert [
                (c.topic, c.offset) for c in session.scalars(select(RetryCopy).order_by(RetryCopy.id))
            ] == [
                (tier_1, 1),
                (tier_2, 0),
            ]
    finally:
        engine.dispose()


def test_unapplied_counts_agency_events_neither_lane_has_committed(broker: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from hub.runtime.lanes import ordinary_group, unapplied
    from hub.settings import AGENCY_SOURCES, Settings

    settings = Settings(
        broker=broker, topic_prefix=f"t{uuid.uuid4().hex[:8]}.", app_id=f"drain-{uuid.uuid4().hex[:8]}"
    )
    topics = [settings.inbound_topic(s) for s in AGENCY_SOURCES] + [
        settings.urgent_topic(s) for s in AGENCY_SOURCES
    ]
    asyncio.run(ensure_topics(broker, topics, 1))
    assert asyncio.run(unapplied(broker, settings)) == 0

    async def publish_then_commit() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for value in (b"one", b"two", b"three"):
                await producer.send_and_wait(settings.inbound_topic("prison"), value, partition=0)
            await producer.send_and_wait(settings.urgent_topic("prison"), b"urgent", partition=0)
        finally:
            await producer.stop()

    asyncio.run(publish_then_commit())
    assert asyncio.run(unapplied(broker, settings)) == 4

    async def the_ordinary_lane_handles_two() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker, group_id=ordinary_group(settings.app_id), enable_auto_commit=False
        )
        await consumer.start()
        try:
            partition = TopicPartition(settings.inbound_topic("prison"), 0)
            consumer.assign([partition])
            await consumer.commit({partition: 2})
        finally:
            await consumer.stop()

    asyncio.run(the_ordinary_lane_handles_two())
    assert asyncio.run(unapplied(broker, settings)) == 2  # one ordinary event and the urgent one
