"""The events a bench run publishes: drawn from the simulated traffic in its proportions, then validated, encoded
and signed as an agency's publisher would, before the clock starts."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.settings import AGENCY_SOURCES, Settings
from hub.tools.bench.options import BENCH_PREFIX
from hub.tools.traffic import NEW_CASE_CHANCE


@dataclass(frozen=True)
class PreparedEvent:
    """An event validated and encoded before the clock starts."""

    source: str
    topic: str  # without the deployment's prefix: where the agency publishes it (its urgent lane, or events)
    key: bytes | None
    value: bytes
    event_id: str
    event_type: str
    urgent: bool
    headers: tuple[tuple[str, bytes], ...] = ()  # the agency's signature


def inbound_topics(prefix: str) -> list[str]:
    """Every agency topic the hub consumes (each agency's events and its urgent lane) under a prefix."""
    settings = Settings(topic_prefix=prefix)
    return [
        lane(source) for source in AGENCY_SOURCES for lane in (settings.inbound_topic, settings.urgent_topic)
    ]


def realistic_mix(traffic: Any, cases: int, count: int, rng: random.Random) -> list[Any]:
    """Follow-ups about random loaded cases, with a few new cases opened (numbered after the loaded ones)."""
    events: list[Any] = []
    next_case = cases
    while len(events) < count:
        if rng.random() < NEW_CASE_CHANCE:
            events.extend(traffic.opening_events(next_case))
            next_case += 1
        else:
            events.append(traffic.follow_up(rng.randrange(cases)))
    return events[:count]


def split_by_urgency(traffic: Any, cases: int, ordinary: int, urgent: int, rng: random.Random) -> tuple:
    """`ordinary` non-urgent follow-ups and `urgent` urgent ones, about random loaded cases."""
    calm: list[Any] = []
    alarming: list[Any] = []
    while len(calm) < ordinary or len(alarming) < urgent:
        event = traffic.follow_up(rng.randrange(cases))
        if event.urgent and len(alarming) < urgent:
            alarming.append(event)
        elif not event.urgent and len(calm) < ordinary:
            calm.append(event)
    return calm, alarming


def prepare(simulated: Iterable[Any], signers: Mapping[str, Any]) -> list[PreparedEvent]:
    """Validate, encode and sign, as an agency's publisher would (`hub publish`)."""
    from connectors.avro import hub_codec
    from connectors.publisher import event_from_json, message_key
    from schemas import event_schemas

    codec = hub_codec()
    schemas = event_schemas()
    unprefixed = Settings(topic_prefix="")
    prepared = []
    for item in simulated:
        event = event_from_json(item.fields, item.source, datetime.now(UTC))
        event_type = event.envelope.event_type
        topic, key = unprefixed.topic_for(item.source, event_type), message_key(event)
        value = codec.encode(schemas[event_type], event.model_dump())
        prepared.append(
            PreparedEvent(
                source=item.source,
                topic=topic,
                key=key,
                value=value,
                event_id=str(event.envelope.event_id),
                event_type=event_type,
                urgent=item.urgent,
                headers=tuple(signers[item.source].headers(BENCH_PREFIX + topic, key, value)),
            )
        )
    return prepared
