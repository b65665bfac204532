"""The hub's topics as the broker creates them: one partition for each urgent lane, the configured number for
the rest (hub/topics.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from hub.settings import AGENCY_SOURCES, Settings
from hub.topics import ensure_topics, hub_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BROKER_TIMEOUT_SECONDS = 20


async def _partitions(broker: str, names: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker)
    await consumer.start()
    try:
        await consumer.topics()  # asks the broker, so topics created since it started are known
        return {name: len(consumer.partitions_for_topic(name) or ()) for name in names}
    finally:
        await consumer.stop()


def test_urgent_lanes_get_one_partition_and_every_other_hub_topic_the_configured_number(broker: str) -> None:
    settings = Settings(broker=broker, topic_prefix=f"t{uuid.uuid4().hex[:8]}.", topic_partitions=3)
    names = hub_topics(settings, ["YH"])

    async def create_and_describe() -> dict[str, int]:
        await ensure_topics(broker, names, settings.topic_partitions)
        return await _partitions(broker, names)

    partitions = asyncio.run(asyncio.wait_for(create_and_describe(), BROKER_TIMEOUT_SECONDS))

    urgent_lanes = {settings.urgent_topic(source) for source in AGENCY_SOURCES}
    assert urgent_lanes < set(names)
    assert {name: count for name, count in partitions.items() if count != 3} == dict.fromkeys(urgent_lanes, 1)
