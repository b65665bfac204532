"""Creates the hub's topics: every agency's events topic and urgent lane, every unit's queue, the retry ladder
and the dead-letter topic."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from hub.settings import AGENCY_SOURCES, URGENT_LANE_SUFFIX, Settings

# The urgent lanes carry a few events an hour, and their consumer asks for them every 10 ms (hub/lanes.py):
# each of their partitions is one more entry in every such fetch, which the worker encodes and decodes in Python
# and the broker answers. One partition each keeps an urgent lane's order total and cut an idle worker's CPU
# (measured 2026-11-23 on Tansu, 4 partitions elsewhere: worker 21.5 -> 16.8 %, broker 31.6 -> 21.4 % of a
# core). A deployment whose urgent lanes already exist keeps them as they are.
URGENT_LANE_PARTITIONS = 1


def partitions_of(name: str, partitions: int) -> int:
    """Partitions a topic is created with: one for an urgent lane, `partitions` for the rest."""
    return URGENT_LANE_PARTITIONS if name.endswith(URGENT_LANE_SUFFIX) else partitions


def hub_topics(settings: Settings, unit_codes: list[str]) -> list[str]:
    return [
        *(settings.inbound_topic(source) for source in AGENCY_SOURCES),
        *(settings.urgent_topic(source) for source in AGENCY_SOURCES),
        *(settings.unit_topic(code) for code in unit_codes),
        settings.dead_letter_topic,
        *(settings.retry_topic(tier) for tier in range(1, len(settings.retry_delays_seconds) + 1)),
    ]


async def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    replication: int = 1,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Create the topics that do not exist yet, each with `partitions_of` its name. `client_options` are the
    security settings (Settings.kafka_client_options); none means plaintext."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10000, **(client_options or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions_of(name, partitions), replication)
            for name in names
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                await admin.create_topics(missing)
    finally:
        await admin.close()
