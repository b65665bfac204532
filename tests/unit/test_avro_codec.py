"""Single-object Avro framing: what agencies put on the wire and what the hub can and cannot read."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime

import pytest
from fastavro.schema import fingerprint

from connectors.avro import AvroCodec, UndecodableMessage
from schemas import build_record_schema, event_schemas, load_schemas, notification_schema

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def released_record() -> dict:
    return {
        "envelope": {
            "event_id": uuid.UUID("5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d"),
            "event_type": "PrisonerReleased",
            "occurred_at": NOW,
            "published_at": NOW,
            "source": {"agency": "prison", "system": "NOMIS", "establishment": None},
            "subject": {"noms_number": "A1234BC"},
        },
        "release_type": "automatic",
        "release_date": date(2026, 3, 2),
        "licence_conditions": [],
        "release_address": None,
    }


@pytest.fixture
def codec() -> AvroCodec:
    return AvroCodec(load_schemas().values())


def test_fingerprint_matches_the_avro_specification_test_vector() -> None:
    # Avro's own test vector: the canonical form "int" has CRC-64-AVRO 0x7275d51a3f395c8f, written little-endian.
    assert bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO")) == (0x7275D51A3F395C8F).to_bytes(8, "little")


def test_encoding_is_single_object_framing(codec: AvroCodec) -> None:
    schema = event_schemas()["PrisonerReleased"]
    payload = codec.encode(schema, released_record())
    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == schema.fingerprint


def test_round_trip(codec: AvroCodec) -> None:
    schema = event_schemas()["PrisonerReleased"]
    decoded = codec.decode(codec.encode(schema, released_record()))
    assert decoded.schema is schema
    assert decoded.record["envelope"]["subject"]["noms_number"] == "A1234BC"
    assert decoded.record["release_date"] == date(2026, 3, 2)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda p: p[:5], "shorter than the single-object header"),
        (lambda p: b"\x00\x01" + p[2:], "marker"),
        (lambda p: p[:2] + b"\xff" * 8 + p[10:], "unknown writer schema fingerprint"),
        (lambda p: p[:-3], "truncated or corrupt"),
        (lambda p: p + b"\x00\x00", "unexpected bytes after the record"),
        (lambda p: b"", "shorter than the single-object header"),
    ],
)
def test_bad_bytes_are_refused_with_a_reason(codec: AvroCodec, mangle, reason: str) -> None:
    payload = codec.encode(event_schemas()["PrisonerReleased"], released_record())
    with pytest.raises(UndecodableMessage, match=reason):
        codec.decode(mangle(payload))


def test_invalid_utf8_in_a_string_is_refused(codec: AvroCodec) -> None:
    record = released_record()
    record["envelope"]["source"]["system"] = "NOMIS"
    payload = codec.encode(event_schemas()["PrisonerReleased"], record)
    broken = payload.replace(b"NOMIS", b"N\xffMIS")
    with pytest.raises(UndecodableMessage, match="UTF-8"):
        codec.decode(broken)


def test_an_older_writer_version_is_read_into_the_current_reader_schema() -> None:
    # An agency still on a version without the optional release_address field.
    current = event_schemas()["PrisonerReleased"]
    older_definition = copy.deepcopy(current.definition)
    older_definition["fields"] = [f for f in older_definition["fields"] if f["name"] != "release_address"]
    older = build_record_schema(older_definition, "prison", {})
    assert older.fingerprint != current.fingerprint
    codec = AvroCodec(load_schemas().values(), older_writers=[older])
    record = released_record()
    del record["release_address"]

    decoded = codec.decode(codec.encode(older, record))

    assert decoded.schema is current
    assert decoded.record["release_address"] is None
    assert decoded.record["envelope"]["subject"]["noms_number"] == "A1234BC"


def test_notification_schema_is_loaded() -> None:
    assert notification_schema().fullname == "victimhub.vlo.VictimNotification"
