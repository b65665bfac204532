"""Creates the hub's topics: every agency's events topic and urgent lane, every unit's queue, the retry ladder
and the dead-letter topic."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from hub.settings import AGENCY_SOURCES, Settings


def hub_topics(settings: Settings, unit_codes: list[str]) -> list[str]:
    return [
        *(settings.inbound_topic(source) for source in AGENCY_SOURCES),
        *(settings.urgent_topic(source) for source in AGENCY_SOURCES),
        *(settings.unit_topic(code) for code in unit_codes),
        settings.dead_letter_topic,
        *(settings.retry_topic(tier) for tier in range(1, len(settings.retry_delays_seconds) + 1)),
    ]


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, replication: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, replication) for name in names if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(missing)
    finally:
        await admin.close()
