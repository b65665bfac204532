"""Ingest's hot path (`event_from_record`) against the full validation (`parse_event`, then `check_event`).

The hot path builds the event from what fastavro read without validating it again and runs the rules compiled
per event type. Whatever an agency can put on the wire, it must end as the full validation ends: the same
event, or the same InvalidEvent with the same message. Every example event is mutated field by field (text
that breaks a format, a length, a control character; dates in the future; over-long and empty lists; other
numbers; another agency or event type), each mutation written as Avro and read back, so that only records
fastavro can produce are compared.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from connectors.avro import AvroCodec, hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline.ingest import ingest
from schemas import AGENCIES, SCHEMA_DIR, build_record_schema, event_schemas, load_schemas
from schemas import validation as validation_module
from schemas.models import model_for_schema
from schemas.validation import (
    InvalidEvent,
    allowed_sources,
    check_event,
    event_from_record,
    parse_event,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CODEC = hub_codec()
EVENT_TYPES = sorted(event_schemas())

# Text that breaks some rule somewhere (identifier formats, the shorter field limits, the longest text,
# control characters), and text that breaks none.
TEXTS = (
    "",
    "bad",
    "A1234BC",
    "X" * 17,
    "Y" * 201,
    "Z" * 2001,
    "tab\tand\nnewline",
    "nul\x00",
    "bell\x07",
    "del\x7f",
)
NUMBERS = (0, 1, 4, -5, 1201)


def example_record(event_type: str) -> tuple[str, dict[str, Any]]:
    """(the agency that publishes it, the example event as fastavro reads it back)."""
    schema = event_schemas()[event_type]
    example = json.loads((SCHEMA_DIR / schema.folder / f"{event_type}.example.json").read_text())
    source = allowed_sources(schema)[0]
    event = event_from_json(example, source, NOW)
    return source, CODEC.decode(CODEC.encode(schema, event.model_dump())).record


def validated(event_type: str, record: dict[str, Any], channel: str, today: date) -> Any:
    event = parse_event(event_type, record)
    check_event(event, channel=channel, today=today)
    return event


def outcome(rules: Any, event_type: str, payload: bytes, channel: str) -> tuple[str, Any]:
    record = CODEC.decode(payload).record
    try:
        event = rules(event_type, record, channel, TODAY)
    except InvalidEvent as refused:
        return "refused", str(refused)
    return "accepted", (event, event.model_dump(), repr(event), event.model_fields_set)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) in a decoded record, records and lists included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))


def replacements(value: Any) -> Iterator[Any]:
    if value is None or isinstance(value, str):
        yield from (None, *TEXTS)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        yield from NUMBERS
    if isinstance(value, datetime):
        yield value + timedelta(days=3650)
    elif isinstance(value, date):
        yield TODAY + timedelta(days=1)
    if isinstance(value, list):
        yield []
        if value:
            yield value * (201 // len(value) + 1)


def mutations(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, value in leaves(record):
        if not path:
            continue
        for replacement in replacements(value):
            mutated = copy.deepcopy(record)
            node = mutated
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = replacement
            yield ".".join(map(str, path)) + f" = {replacement!r:.30}", mutated
    for agency in AGENCIES:
        mutated = copy.deepcopy(record)
        mutated["envelope"]["source"]["agency"] = agency
        yield f"agency {agency}", mutated
    for event_type in ("VictimReferred", "PrisonerReleased"):
        mutated = copy.deepcopy(record)
        mutated["envelope"]["event_type"] = event_type
        yield f"event_type {event_type}", mutated


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_example_is_built_as_the_full_validation_builds_it(event_type: str) -> None:
    source, record = example_record(event_type)
    payload = CODEC.encode(event_schemas()[event_type], record)

    hot = outcome(event_from_record, event_type, payload, source)
    full = outcome(validated, event_type, payload, source)

    assert hot[0] == "accepted", hot
    assert hot == full
    event = hot[1][0]
    assert type(event) is type(full[1][0])
    assert isinstance(event.envelope.occurred_at, datetime) and event.envelope.occurred_at.tzinfo is not None


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_compiled_check(event_type: str) -> None:
    """Not a rule but the speed: a type whose schema the compiled check does not cover takes the full way."""
    assert validation_module._compiled(event_type) is not None


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_mutated_event_ends_as_the_full_validation_ends_it(event_type: str) -> None:
    source, record = example_record(event_type)
    schema = event_schemas()[event_type]
    other_channel = next(agency for agency in AGENCIES if agency != source)
    compared = refused = 0
    for label, mutated in mutations(record):
        try:
            payload = CODEC.encode(schema, mutated)
        except Exception:
            continue  # not something Avro can carry in this field
        for channel in (source, other_channel):
            hot = outcome(event_from_record, event_type, payload, channel)
            assert hot == outcome(validated, event_type, payload, channel), f"{label} on {channel}"
            compared += 1
            refused += hot[0] == "refused"
    assert compared > 2 * len(AGENCIES) and refused > len(AGENCIES)


def test_each_rule_refuses_on_the_hot_path_naming_the_field() -> None:
    source, record = example_record("PrisonerReleased")
    schema = event_schemas()["PrisonerReleased"]
    cases = [
        (
            ("envelope", "subject", "noms_number"),
            "NOT-A-NOMS",
            "envelope.subject.noms_number: must be a letter",
        ),
        (("envelope", "subject", "noms_number"), None, "envelope.subject.noms_number: is required"),
        (("release_address", "postcode"), "P" * 17, "release_address.postcode: is longer than 16"),
        (("release_address", "town"), "Leeds\x00", "release_address.town: contains a control character"),
        (("licence_conditions", 0, "text"), "T" * 2001, "licence_conditions.0.text: is longer than 2000"),
        (("envelope", "source", "agency"), "police", "envelope.source.agency: is not a known agency code"),
        (("envelope", "event_type"), "VictimReferred", "envelope.event_type: must be PrisonerReleased"),
    ]
    for path, value, message in cases:
        mutated = copy.deepcopy(record)
        node = mutated
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        decoded = CODEC.decode(CODEC.encode(schema, mutated)).record
        with pytest.raises(InvalidEvent, match=message.replace(".", r"\.")):
            event_from_record("PrisonerReleased", decoded, source, TODAY)


def test_event_specific_rules_refuse_on_the_hot_path() -> None:
    source, record = example_record("SentenceImposed")
    record["offences"] = []
    record["custodial_term_months"] = None
    with pytest.raises(InvalidEvent) as refused:
        event_from_record("SentenceImposed", record, source, TODAY)
    assert "offences: must list at least one offence" in str(refused.value)


def test_an_event_type_the_hub_does_not_know_is_refused_as_before() -> None:
    with pytest.raises(InvalidEvent, match="event_type: is not an event type the hub knows"):
        event_from_record("VictimNotification", {}, "prison", TODAY)


def test_an_event_type_without_a_compiled_check_takes_the_full_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation_module, "_compiled", lambda event_type: None)
    source, record = example_record("PrisonerReleased")
    expected = parse_event("PrisonerReleased", copy.deepcopy(record))
    assert event_from_record("PrisonerReleased", record, source, TODAY) == expected
    record = copy.deepcopy(example_record("PrisonerReleased")[1])
    with pytest.raises(InvalidEvent, match="claims another agency than the court channel"):
        event_from_record("PrisonerReleased", record, "court", TODAY)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_an_event_from_an_older_writer_is_ingested_as_the_full_validation_builds_it(event_type: str) -> None:
    """fastavro reads an older writer's record (here: one without the fields that have defaults) into the hub's
    schema, but in the writer's field order: ingest gives the event in the hub's order all the same."""
    current = event_schemas()[event_type]
    older = copy.deepcopy(current.definition)
    older["fields"] = [field for field in older["fields"] if "default" not in field]
    writer = build_record_schema(older, current.folder, {})
    codec = AvroCodec(load_schemas().values(), [writer])
    source, record = example_record(event_type)
    payload = codec.encode(writer, record)
    message = InboundMessage(f"agency.{source}.events", 0, 0, None, None, payload)

    def ended(build: Any) -> tuple[str, Any]:
        try:
            event = build()
        except InvalidEvent as refused:
            return "refused", str(refused)
        return "accepted", (event, repr(event), list(event.model_dump()))

    ingested = ended(lambda: ingest(message, source, codec, 65536, TODAY).event)

    assert ingested == ended(lambda: validated(event_type, codec.decode(payload).record, source, TODAY))


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "map", "values": "string"},
        ["null", "string", "long"],
        {"type": "string", "logicalType": "odd"},
    ],
    ids=["map", "union", "logical-type"],
)
def test_a_schema_shape_the_compiled_check_does_not_cover_is_left_to_the_full_way(field_type: Any) -> None:
    """No event has one of these today; an event type that gets one is checked the full way (`_compiled` gives
    None), never half checked."""
    schema = build_record_schema(
        {"type": "record", "name": "victimhub.test.Odd", "fields": [{"name": "odd", "type": field_type}]},
        "prison",
        {},
    )
    models = {"victimhub.test.Odd": model_for_schema(schema)}
    with pytest.raises(validation_module._Uncompiled):
        validation_module._compile_record(schema.definition, models, {})


def test_ingest_gives_the_event_the_full_validation_gives() -> None:
    source, record = example_record("VictimReferred")
    payload = CODEC.encode(event_schemas()["VictimReferred"], record)
    message = InboundMessage(f"agency.{source}.events", 0, 0, None, None, payload)

    ingested = ingest(message, source, CODEC, 65536, TODAY)

    assert ingested.event == validated("VictimReferred", CODEC.decode(payload).record, source, TODAY)
    assert ingested.event.victim.address.postcode == record["victim"]["address"]["postcode"]
