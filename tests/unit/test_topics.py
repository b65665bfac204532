"""Topic names: each agency's events topic and urgent lane, and which one an event goes to."""

from __future__ import annotations

import pytest

from hub.runtime.topics import hub_topics
from hub.settings import AGENCY_SOURCES, Settings
from routing.catalogue import CATALOGUE

SETTINGS = Settings(broker="unused:9092", topic_prefix="p.")


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_urgent_event_types_travel_on_the_urgent_lane_and_the_rest_on_the_events_topic(
    event_type: str,
) -> None:
    topic = SETTINGS.topic_for("prison", event_type)

    expected = "p.agency.prison.urgent" if CATALOGUE[event_type].urgent else "p.agency.prison.events"
    assert topic == expected


def test_both_lanes_belong_to_their_source() -> None:
    for source in AGENCY_SOURCES:
        assert SETTINGS.source_of_topic(SETTINGS.inbound_topic(source)) == source
        assert SETTINGS.source_of_topic(SETTINGS.urgent_topic(source)) == source
    assert SETTINGS.source_of_topic("p.vlo.YH") is None
    assert SETTINGS.source_of_topic("agency.prison.urgent") is None  # another deployment's prefix


def test_the_hub_creates_every_lane_queue_retry_tier_and_the_dead_letter_topic() -> None:
    names = hub_topics(SETTINGS, ["YH", "NE"])

    assert len(names) == len(set(names))
    assert {"p.agency.court.urgent", "p.agency.court.events", "p.vlo.YH", "p.hub.dlq"} <= set(names)
    assert [n for n in names if ".retry." in n] == [
        f"p.hub.retry.{tier}" for tier in range(1, len(SETTINGS.retry_delays_seconds) + 1)
    ]
