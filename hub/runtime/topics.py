"""Creates the hub's topics: every agency's events topic and urgent lane, every unit's queue, the topics other
agencies read (`outbound.<agency>`), the retry ladder and the dead-letter topic."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hub.settings import AGENCY_SOURCES, URGENT_LANE_SUFFIX, Settings
from schemas import OUTBOUND_RECIPIENTS

DAY_MS = 24 * 3600 * 1000
# Kafka's CreateTopics error for a topic that exists: another process created it first, which is fine.
TOPIC_ALREADY_EXISTS = 36

# The urgent lanes carry a few events an hour, and their consumer asks for them often (hub/runtime/lanes.py):
# each of their partitions is one more entry in every such fetch, which the worker encodes and decodes in Python
# and the broker answers. One partition each keeps an urgent lane's order total and spares an idle worker and
# the broker that work. A deployment whose urgent lanes already exist keeps them as they are.
URGENT_LANE_PARTITIONS = 1


def partitions_of(name: str, partitions: int) -> int:
    """Partitions a topic is created with: one for an urgent lane, `partitions` for the rest."""
    return URGENT_LANE_PARTITIONS if name.endswith(URGENT_LANE_SUFFIX) else partitions


def hub_topics(settings: Settings, unit_codes: list[str]) -> list[str]:
    return [
        *(settings.inbound_topic(source) for source in AGENCY_SOURCES),
        *(settings.urgent_topic(source) for source in AGENCY_SOURCES),
        *(settings.unit_topic(code) for code in unit_codes),
        *(settings.outbound_topic(agency) for agency in OUTBOUND_RECIPIENTS),
        settings.dead_letter_topic,
        *(settings.retry_topic(tier) for tier in range(1, len(settings.retry_delays_seconds) + 1)),
    ]


def retention_of(settings: Settings) -> Callable[[str], int | None]:
    """How long the broker keeps each hub topic's records (retention.ms), by name; None for a topic not the hub's
    (the broker's default then). The schedule behind each period: README, Retention."""
    retry_topics = {settings.retry_topic(tier) for tier in range(1, len(settings.retry_delays_seconds) + 1)}
    # What the hub writes for agencies is kept as long as what agencies write for it.
    agency_topics = {
        topic
        for source in AGENCY_SOURCES
        for topic in (settings.inbound_topic(source), settings.urgent_topic(source))
    } | {settings.outbound_topic(agency) for agency in OUTBOUND_RECIPIENTS}
    unit_queues = f"{settings.topic_prefix}vlo."

    def retention_ms(name: str) -> int | None:
        if name in agency_topics:
            return settings.agency_topic_retention_days * DAY_MS
        if name.startswith(unit_queues):
            return settings.queue_retention_days * DAY_MS
        if name == settings.dead_letter_topic:
            return settings.dead_letter_retention_days * DAY_MS
        if name in retry_topics:
            return settings.retry_topic_retention_hours * 3600 * 1000
        return None

    return retention_ms


def _new_topic(name: str, partitions: int, replication: int, retention_ms: int | None) -> NewTopic:
    configs = {"retention.ms": str(retention_ms)} if retention_ms is not None else None
    return NewTopic(name, partitions_of(name, partitions), replication, topic_configs=configs)


async def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    replication: int = 1,
    *,
    client_options: Mapping[str, Any] | None = None,
    retention: Callable[[str], int | None] | None = None,
) -> None:
    """Create the topics that do not exist yet, each with `partitions_of` its name and, given `retention`
    (`retention_of`), its retention. A topic that exists keeps its configuration: changing it needs the broker's
    ALTER_CONFIGS right, which only an administrator holds (deploy/kafka/acls.txt). `client_options` are the
    security settings (Settings.kafka_client_options); none means plaintext."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10000, **(client_options or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            _new_topic(name, partitions, replication, retention(name) if retention else None)
            for name in names
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                response = await admin.create_topics(missing)
                # A refused topic (a configuration the broker rejects, a missing right) is an error per topic in
                # the answer, not an exception: without this it would go unnoticed until something used it.
                refused = [
                    f"{answer[0]} (error {answer[1]}{f': {answer[2]}' if len(answer) > 2 and answer[2] else ''})"
                    for answer in response.topic_errors  # (topic, error code[, message, ...])
                    if answer[1] not in (0, TOPIC_ALREADY_EXISTS)
                ]
                if refused:
                    raise KafkaError(f"the broker did not create {', '.join(refused)}")
    finally:
        await admin.close()
