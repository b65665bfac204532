"""The catalogue as agencies see it: every docs/domain.md event has a schema, model, example, round trip."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from routing.catalogue import CATALOGUE
from schemas import SCHEMA_DIR, event_schemas
from schemas.compatibility import check, release
from schemas.models import event_model
from schemas.validation import allowed_sources

DOMAIN = Path(__file__).resolve().parents[2] / "docs" / "domain.md"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENT_TYPES = sorted(event_schemas())


def domain_event_names() -> set[str]:
    section = DOMAIN.read_text(encoding="utf-8").split("## 4. The event catalogue")[1].split("## 5.")[0]
    names = set(re.findall(r"^\| `(\w+)`", section, flags=re.MULTILINE))
    # "VictimOptedOut / VictimOptedIn" shares one row
    names.update(re.findall(r"`(Victim\w+)` / `(?:\w+)`", section))
    names.update(re.findall(r"`\w+` / `(Victim\w+)`", section))
    return names


@pytest.mark.skipif(not DOMAIN.exists(), reason="docs/domain.md is missing")
def test_every_event_in_domain_md_has_a_schema_and_a_catalogue_entry() -> None:
    names = domain_event_names()
    assert len(names) == 48
    assert names == set(EVENT_TYPES)
    assert names == set(CATALOGUE)


def test_every_schema_lives_in_its_sources_folder_and_documents_every_field() -> None:
    for name in EVENT_TYPES:
        schema = event_schemas()[name]
        assert schema.folder in allowed_sources(schema)
        assert schema.definition["fields"][0]["name"] == "envelope"
        undocumented = [f["name"] for f in schema.definition["fields"] if not f.get("doc")]
        assert not undocumented, f"{name}: {undocumented}"


def _optional(avro_type: object) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_model_matches_its_schema_field_for_field(event_type: str) -> None:
    schema = event_schemas()[event_type]
    model = event_model(event_type)
    schema_fields = {f["name"]: f for f in schema.definition["fields"]}
    assert list(model.model_fields) == list(schema_fields)
    for name, field in schema_fields.items():
        model_field = model.model_fields[name]
        assert model_field.is_required() == ("default" not in field), name
        if _optional(field["type"]):
            assert model_field.default is None, name


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_example_round_trips_json_model_avro_model(event_type: str) -> None:
    schema = event_schemas()[event_type]
    example = json.loads((SCHEMA_DIR / schema.folder / f"{event_type}.example.json").read_text())
    codec = hub_codec()

    event = event_from_json(example, allowed_sources(schema)[0], NOW)
    decoded = codec.decode(codec.encode(schema, event.model_dump()))
    again = type(event).model_validate(decoded.record)

    assert again == event
    assert str(again.envelope.event_id) == example["event_id"]


def test_current_schemas_are_compatible_with_every_released_version() -> None:
    assert check() == []


def test_an_incompatible_change_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    release(copy)  # whatever is current is released as the baseline
    path = copy / "prison" / "PrisonerReleased.avsc"
    definition = json.loads(path.read_text())
    # A new required field with no default: data written by agencies on the released version cannot be read.
    definition["fields"].append({"name": "release_time", "type": "string", "doc": "New."})
    path.write_text(json.dumps(definition))
    problems = check(copy)

    assert [p.name for p in problems] == ["PrisonerReleased"]
    assert "release_time" in str(problems[0])


def test_a_compatible_change_passes(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    release(copy)
    path = copy / "prison" / "PrisonerReleased.avsc"
    definition = json.loads(path.read_text())
    definition["fields"].append(
        {"name": "release_time", "type": ["null", "string"], "default": None, "doc": "New."}
    )
    path.write_text(json.dumps(definition))
    assert check(copy) == []
