"""Confluent framing through a schema registry: ids, caching, failures, and agencies on other schema versions.

The registry is the in-process one in tests/registry_server.py, on a loopback port; no broker is needed.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.avro import AvroCodec, UndecodableMessage, hub_codec
from connectors.registry import RegistryUnavailable, SchemaRegistry, value_subject
from schemas import RecordSchema, build_record_schema, event_schemas, load_schemas
from tests.registry_server import RegistryServer, running_registry

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
SUBJECT = value_subject("agency.prison.events")


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    with running_registry() as running:
        yield running


@pytest.fixture
def registry(server: RegistryServer) -> SchemaRegistry:
    return SchemaRegistry(server.url, timeout=2.0)


@pytest.fixture
def codec(registry: SchemaRegistry) -> AvroCodec:
    return hub_codec(registry=registry)


@pytest.fixture
def agency(server: RegistryServer) -> SchemaRegistry:
    """The agency's own client: registering through the hub's would fill the hub's cache for it."""
    return SchemaRegistry(server.url, timeout=2.0)


def envelope(event_type: str, agency: str, **subject: str) -> dict[str, Any]:
    return {
        "event_id": uuid.UUID("5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d"),
        "event_type": event_type,
        "occurred_at": NOW,
        "published_at": NOW,
        "source": {"agency": agency, "system": "NOMIS", "establishment": None},
        "subject": subject,
    }


def released_record() -> dict[str, Any]:
    return {
        "envelope": envelope("PrisonerReleased", "prison", noms_number="A1234BC"),
        "release_type": "automatic",
        "release_date": date(2026, 3, 2),
        "licence_conditions": [],
        "release_address": None,
    }


def recalled_record() -> dict[str, Any]:
    return {
        "envelope": envelope("OffenderRecalled", "probation", crn="X123456", noms_number="A1234BC"),
        "recall_type": "standard",
        "recall_date": date(2026, 3, 1),
        "unlawfully_at_large": False,
    }


def variant(name: str, change) -> RecordSchema:
    """Another version of one of the hub's schemas, as an agency might have it."""
    definition = copy.deepcopy(event_schemas()[name].definition)
    change(definition)
    return build_record_schema(definition, "agency", {})


def field_of(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(field for field in definition["fields"] if field["name"] == name)


def agency_payload(agency: SchemaRegistry, schema: RecordSchema, record: dict[str, Any]) -> bytes:
    """What an agency on `schema` puts on the wire: its schema registered under the topic's subject."""
    schema_id = agency.register(SUBJECT, schema)
    return AvroCodec([schema]).encode_confluent(schema, record, schema_id)


def test_round_trip_with_confluent_framing(agency: SchemaRegistry, codec: AvroCodec) -> None:
    schema = event_schemas()["PrisonerReleased"]
    schema_id = agency.register(SUBJECT, schema)

    payload = codec.encode_confluent(schema, released_record(), schema_id)
    decoded = codec.decode(payload)

    assert payload[0] == 0
    assert payload[1:5] == schema_id.to_bytes(4, "big")
    assert decoded.schema is schema
    assert decoded.record["envelope"]["subject"]["noms_number"] == "A1234BC"
    assert decoded.record["release_date"] == date(2026, 3, 2)


def test_single_object_is_still_read_when_a_registry_is_configured(codec: AvroCodec) -> None:
    schema = event_schemas()["PrisonerReleased"]
    assert codec.decode(codec.encode(schema, released_record())).schema is schema


def test_ids_are_stable_and_each_is_fetched_once(
    server: RegistryServer, agency: SchemaRegistry, codec: AvroCodec
) -> None:
    schema = event_schemas()["PrisonerReleased"]
    schema_id = agency.register(SUBJECT, schema)
    asked = len(server.requests)

    assert agency.register(SUBJECT, schema) == schema_id  # cached: no request
    assert len(server.requests) == asked
    # Ids are global: the same schema under another topic's subject has the same id.
    assert agency.register(value_subject("agency.other.events"), schema) == schema_id

    payload = codec.encode_confluent(schema, released_record(), schema_id)
    before = len(server.requests)
    codec.decode(payload)
    assert server.requests[before:] == [("GET", f"/schemas/ids/{schema_id}")]
    codec.decode(payload)
    assert len(server.requests) == before + 1  # the second decode of the same id asks nothing


def test_an_unknown_id_is_undecodable(codec: AvroCodec) -> None:
    payload = b"\x00" + (999).to_bytes(4, "big") + b"\x02"
    with pytest.raises(UndecodableMessage, match="unknown schema id 999"):
        codec.decode(payload)


def test_registry_down_is_transient_not_a_dead_letter(
    server: RegistryServer, agency: SchemaRegistry, codec: AvroCodec
) -> None:
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode_confluent(schema, released_record(), agency.register(SUBJECT, schema))
    server.stop()

    with pytest.raises(RegistryUnavailable, match="unavailable fetching schema id") as raised:
        codec.decode(payload)

    assert not isinstance(raised.value, UndecodableMessage)


def test_an_id_already_fetched_is_read_while_the_registry_is_down(
    server: RegistryServer, agency: SchemaRegistry, codec: AvroCodec
) -> None:
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode_confluent(schema, released_record(), agency.register(SUBJECT, schema))
    codec.decode(payload)
    server.stop()

    assert codec.decode(payload).record["release_type"] == "automatic"


def test_a_registry_error_response_is_transient(
    server: RegistryServer, agency: SchemaRegistry, codec: AvroCodec
) -> None:
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode_confluent(schema, released_record(), agency.register(SUBJECT, schema))
    server.state.failing = 500

    with pytest.raises(RegistryUnavailable, match="HTTP 500"):
        codec.decode(payload)

    server.state.failing = None
    assert codec.decode(payload).schema is schema  # the failure was not cached


def test_an_agency_on_an_older_version_is_read_into_the_current_schema(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    # An agency still on a version without the optional release_address field.
    older = variant(
        "PrisonerReleased",
        lambda d: d.update(fields=[f for f in d["fields"] if f["name"] != "release_address"]),
    )
    record = released_record()
    del record["release_address"]

    decoded = codec.decode(agency_payload(agency, older, record))

    assert decoded.schema is event_schemas()["PrisonerReleased"]
    assert decoded.record["release_address"] is None
    assert decoded.record["envelope"]["subject"]["noms_number"] == "A1234BC"


def test_an_agency_on_a_newer_version_is_read_into_the_current_schema(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    # A newer version with an optional field the hub does not know yet: read, and the field is dropped.
    newer = variant(
        "PrisonerReleased",
        lambda d: d["fields"].append({"name": "release_time", "type": ["null", "string"], "default": None}),
    )
    record = {**released_record(), "release_time": "09:30"}

    decoded = codec.decode(agency_payload(agency, newer, record))

    assert decoded.schema is event_schemas()["PrisonerReleased"]
    assert "release_time" not in decoded.record
    assert decoded.record["release_type"] == "automatic"


def test_a_new_enum_symbol_the_agency_used_is_undecodable_naming_the_enum(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    # RecallType has no default, so a symbol the hub's version lacks cannot be resolved.
    newer = variant(
        "OffenderRecalled", lambda d: field_of(d, "recall_type")["type"]["symbols"].append("emergency")
    )
    record = {**recalled_record(), "recall_type": "emergency"}

    with pytest.raises(UndecodableMessage, match="victimhub.probation.RecallType") as raised:
        codec.decode(agency_payload(agency, newer, record))

    assert "emergency" not in str(raised.value)  # the reason names the enum, never the value sent


def test_a_new_enum_symbol_reads_as_the_enum_default_where_there_is_one(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    # ReleaseType declares the default "other": Avro resolution maps an unknown symbol to it.
    newer = variant(
        "PrisonerReleased", lambda d: field_of(d, "release_type")["type"]["symbols"].append("early_removal")
    )
    record = {**released_record(), "release_type": "early_removal"}

    assert codec.decode(agency_payload(agency, newer, record)).record["release_type"] == "other"


def test_a_field_of_an_incompatible_type_is_undecodable_naming_the_types(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    changed = variant(
        "OffenderRecalled", lambda d: field_of(d, "unlawfully_at_large").update(type="string", default="no")
    )
    record = {**recalled_record(), "unlawfully_at_large": "secret-value"}

    with pytest.raises(UndecodableMessage, match="string is not boolean") as raised:
        codec.decode(agency_payload(agency, changed, record))

    assert "secret-value" not in str(raised.value)


def test_a_record_the_hub_has_no_reader_for_is_undecodable(agency: SchemaRegistry, codec: AvroCodec) -> None:
    unknown = build_record_schema(
        {"type": "record", "name": "PrisonerTeleported", "namespace": "victimhub.prison", "fields": []},
        "agency",
        {},
    )
    with pytest.raises(UndecodableMessage, match="no reader schema for victimhub.prison.PrisonerTeleported"):
        codec.decode(agency_payload(agency, unknown, {}))


def test_a_truncated_confluent_body_is_refused_like_a_single_object_one(
    agency: SchemaRegistry, codec: AvroCodec
) -> None:
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode_confluent(schema, released_record(), agency.register(SUBJECT, schema))

    with pytest.raises(UndecodableMessage, match="truncated or corrupt"):
        codec.decode(payload[:-3])
    with pytest.raises(UndecodableMessage, match="unexpected bytes after the record"):
        codec.decode(payload + b"\x00")
    with pytest.raises(UndecodableMessage, match="shorter than the Confluent header"):
        codec.decode(payload[:3])


def test_a_confluent_payload_with_no_registry_configured_is_undecodable() -> None:
    codec = AvroCodec(load_schemas().values())
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode_confluent(schema, released_record(), 1)

    with pytest.raises(UndecodableMessage, match="no schema registry is configured"):
        codec.decode(payload)


def test_a_registry_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        SchemaRegistry("localhost:8081")
