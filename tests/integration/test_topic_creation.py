"""The hub's topics as the broker creates them: one partition for each urgent lane, the configured number for
the rest, and each with its retention (hub/runtime/topics.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hub.runtime.topics import DAY_MS, ensure_topics, hub_topics, retention_of
from hub.settings import AGENCY_SOURCES, Settings
from schemas import OUTBOUND_RECIPIENTS

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


async def _retention_ms(broker: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        found: dict[str, int] = {}
        for name in names:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            for *_, described, entries in response.resources:
                found.update((described, int(value)) for key, value, *_ in entries if key == "retention.ms")
        return found
    finally:
        await admin.close()


def test_each_hub_topic_is_created_with_its_retention(broker: str) -> None:
    settings = Settings(broker=broker, topic_prefix=f"t{uuid.uuid4().hex[:8]}.", topic_partitions=1)
    names = hub_topics(settings, ["YH"])

    async def create_and_describe() -> dict[str, int]:
        await ensure_topics(broker, names, settings.topic_partitions, retention=retention_of(settings))
        return await _retention_ms(broker, names)

    retention = asyncio.run(asyncio.wait_for(create_and_describe(), BROKER_TIMEOUT_SECONDS))

    assert retention == {
        **{settings.inbound_topic(source): 28 * DAY_MS for source in AGENCY_SOURCES},
        **{settings.urgent_topic(source): 28 * DAY_MS for source in AGENCY_SOURCES},
        settings.unit_topic("YH"): 30 * DAY_MS,
        **{settings.outbound_topic(agency): 28 * DAY_MS for agency in OUTBOUND_RECIPIENTS},
        settings.dead_letter_topic: 14 * DAY_MS,
        **{settings.retry_topic(tier): DAY_MS for tier in range(1, len(settings.retry_delays_seconds) + 1)},
    }
