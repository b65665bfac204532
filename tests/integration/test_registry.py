"""Confluent framing on a real broker: the publisher registers and frames, the hub's codec reads it back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.publisher import AgencyPublisher, event_from_json
from connectors.registry import SchemaRegistry, value_subject
from connectors.signatures import signer_for
from hub.runtime.topics import ensure_topics
from schemas import event_schemas
from tests.integration.conftest import with_keys
from tests.integration.waiting import read_topic
from tests.registry_server import RegistryServer, running_registry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PUBLISH_TIMEOUT_SECONDS = 30


@pytest.fixture
def registry_server() -> Iterator[RegistryServer]:
    with running_registry() as running:
        yield running


def test_publisher_writes_confluent_framing_the_hub_reads(
    broker: str, registry_server: RegistryServer, tmp_path: Path
) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.agency.prison.events"
    event = event_from_json(
        {
            "event_type": "PrisonerReleased",
            "noms_number": "A1234BC",
            "release_type": "automatic",
            "release_date": "2026-03-02",
        },
        "prison",
        datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    )

    async def publish() -> None:
        await ensure_topics(broker, [topic], partitions=1)
        signers = {"prison": signer_for(KeysDirectory(with_keys(tmp_path / "keys")), "prison")}
        async with AgencyPublisher(broker, signers=signers, registry_url=registry_server.url) as publisher:
            await publisher.publish(topic, [event])

    asyncio.run(asyncio.wait_for(publish(), PUBLISH_TIMEOUT_SECONDS))
    records = read_topic(broker, topic, timeout=10)

    assert len(records) == 1
    value = records[0].value
    assert value[0] == 0
    schema_id = int.from_bytes(value[1:5], "big")
    assert ("POST", f"/subjects/{value_subject(topic)}/versions") in registry_server.requests

    decoded = hub_codec(registry=SchemaRegistry(registry_server.url, timeout=5.0)).decode(value)

    assert ("GET", f"/schemas/ids/{schema_id}") in registry_server.requests
    assert decoded.schema is event_schemas()["PrisonerReleased"]
    assert decoded.record["envelope"]["event_id"] == event.envelope.event_id
    assert decoded.record["envelope"]["subject"]["noms_number"] == "A1234BC"
    assert decoded.record["release_type"] == "automatic"
