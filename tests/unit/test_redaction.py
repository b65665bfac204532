"""What operators see of a dead letter's event: only what the allow-list names, whatever the schema adds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.pipeline.redaction import HIDDEN, operator_view, redacted_view
from schemas import SCHEMA_DIR, event_schemas

CODEC = hub_codec()
EXAMPLES = sorted(SCHEMA_DIR.glob("*/*.example.json"))
# What the schemas mark as personal, clinical or an offender's whereabouts: none of it may show.
FLAGS = ("hub.personal", "hub.clinical", "hub.offender_location")


def view_of(path: Path) -> tuple[dict, dict]:
    data = json.loads(path.read_text())
    event = event_from_json(data, path.parent.name, datetime.now(UTC), validate=False)
    schema = event_schemas()[event.envelope.event_type]
    return redacted_view(CODEC, CODEC.encode(schema, event.model_dump())), event.model_dump(mode="json")


def flagged_values(value: object, schema: object, named: dict, flagged: bool = False) -> list[str]:
    """Every text or date value that sits under a field the schema flags (at any depth)."""
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        return (
            [v for branch in schema for v in flagged_values(value, branch, named, flagged)] if value else []
        )
    if isinstance(schema, dict) and schema.get("type") == "record" and isinstance(value, dict):
        named[schema["name"]] = schema
        return [
            v
            for field in schema["fields"]
            for v in flagged_values(
                value.get(field["name"]), field["type"], named, flagged or any(field.get(f) for f in FLAGS)
            )
        ]
    if isinstance(schema, dict) and schema.get("type") == "array" and isinstance(value, list):
        return [v for item in value for v in flagged_values(item, schema["items"], named, flagged)]
    return [str(value)] if flagged and isinstance(value, str) and len(value) > 3 else []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_nothing_the_schemas_flag_as_sensitive_is_shown(path: Path) -> None:
    view, event = view_of(path)
    assert view["decodable"] is True
    schema = event_schemas()[event["envelope"]["event_type"]]
    shown = json.dumps(view, default=str)
    for value in flagged_values(event, schema.definition, {}):
        assert value not in shown, (path.name, value)


def test_a_sentence_shows_its_identifiers_and_no_offender_name_alias_or_birth_date() -> None:
    view, event = view_of(SCHEMA_DIR / "court" / "SentenceImposed.example.json")
    shown = view["event"]
    assert shown["envelope"]["subject"]["case_ref"] == event["envelope"]["subject"]["case_ref"]
    assert shown["disposal"] == event["disposal"] and str(shown["sentence_date"]) == event["sentence_date"]
    offender = shown["offender"]
    assert offender["name"] == offender["date_of_birth"] == HIDDEN and set(offender["aliases"]) == {HIDDEN}
    assert all(offence["description"] == HIDDEN for offence in shown["offences"])
    assert event["offender"]["name"] not in json.dumps(view, default=str)


def test_licence_conditions_show_their_codes_and_no_text() -> None:
    view, event = view_of(SCHEMA_DIR / "probation" / "LicenceConditionsSet.example.json")
    shown = view["event"]
    assert [c["code"] for c in shown["conditions"]] == [c["code"] for c in event["conditions"]]
    assert {c["text"] for c in shown["conditions"]} == {HIDDEN}
    for condition in event["conditions"] + event["omitted_requested_conditions"]:
        assert condition["text"] not in json.dumps(view, default=str)


def test_a_field_nobody_has_marked_safe_is_hidden() -> None:
    schema = {
        "type": "record",
        "name": "victimhub.test.Future",
        "fields": [
            {"name": "case_ref", "type": "string"},
            {"name": "note_added_later", "type": ["null", "string"]},
            {
                "name": "outcome",
                "type": {"type": "enum", "name": "victimhub.test.Outcome", "symbols": ["yes", "no"]},
            },
        ],
    }
    record = {"case_ref": "01X", "note_added_later": "Jane lives at 1 Road", "outcome": "yes"}
    assert operator_view(record, schema) == {"case_ref": "01X", "note_added_later": HIDDEN, "outcome": "yes"}
