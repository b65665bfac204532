"""schemas/events.py is what `python -m schemas.generate` writes from the current schemas, and its classes are
the models the schemas describe: field for field the schema's, and type for type, default for default what the
run-time builder (`model_for_schema`) makes of the same schema."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

import pytest

from schemas import AvroRecord, build_record_schema, event_schemas
from schemas import events as generated
from schemas.generate import (
    COMMAND,
    EVENTS_PATH,
    UnsupportedSchema,
    catalogue,
    generated_schemas,
    render,
    schema_digest,
    stale_schemas,
)
from schemas.models import NotificationModel, can_assemble, event_model, event_models, model_for_schema

SCHEMAS = generated_schemas()
NAMES = list(SCHEMAS)


def test_events_py_is_what_the_generator_writes_now() -> None:
    assert EVENTS_PATH.read_text(encoding="utf-8") == render(), (
        f"schemas/events.py is out of date: run {COMMAND}"
    )


def test_there_is_a_class_named_as_each_event_type_and_one_for_the_notification() -> None:
    assert set(generated.EVENTS) == set(event_schemas())
    for event_type, model in generated.EVENTS.items():
        assert model.__name__ == event_type
        assert getattr(generated, event_type) is model is event_model(event_type)
        assert event_models(event_type)[event_schemas()[event_type].fullname] is model
    assert set(get_args(generated.Event)) == set(generated.EVENTS.values())
    assert NotificationModel is generated.VictimNotification
    assert set(generated.RECORDS) == set(generated.SCHEMA_DIGESTS) == set(SCHEMAS)
    assert stale_schemas(generated.SCHEMA_DIGESTS) == []


def _record_definitions(schema: Any, found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every record defined in a self-contained schema, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _record_definitions(branch, found)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            found[schema["name"]] = schema
            for field in schema["fields"]:
                _record_definitions(field["type"], found)
        elif kind == "array":
            _record_definitions(schema["items"], found)
        elif kind == "map":
            _record_definitions(schema["values"], found)
        elif isinstance(kind, (dict, list)):
            _record_definitions(kind, found)
    return found


def _admits_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


@pytest.mark.parametrize("name", NAMES)
def test_each_class_has_its_schemas_fields_in_order_required_and_optional_alike(name: str) -> None:
    definitions = _record_definitions(SCHEMAS[name].definition, {})
    assert set(generated.RECORDS[name]) == set(definitions)
    for fullname, model in generated.RECORDS[name].items():
        schema_fields = {f["name"]: f for f in definitions[fullname]["fields"]}
        assert list(model.model_fields) == list(schema_fields), fullname
        for field_name, field in schema_fields.items():
            where = f"{fullname}.{field_name}"
            model_field = model.model_fields[field_name]
            assert model_field.is_required() == ("default" not in field), where
            optional = isinstance(field["type"], list) and "null" in field["type"]
            assert _admits_none(model_field.annotation) == optional, where
            if field.get("default", ...) is None:
                assert model_field.default is None, where
        assert model.model_config == {"extra": "forbid", "frozen": True}
        assert issubclass(model, AvroRecord) and can_assemble(model)


def _same_type(generated_type: Any, built_type: Any, where: str) -> None:
    if isinstance(generated_type, type) and issubclass(generated_type, AvroRecord):
        assert isinstance(built_type, type) and issubclass(built_type, AvroRecord), where
        _same_model(generated_type, built_type)
        return
    origin = get_origin(generated_type)
    assert origin == get_origin(built_type), where
    if origin in (None, typing.Literal, typing.Annotated):
        assert generated_type == built_type, where
        return
    assert origin in (list, dict, types.UnionType, typing.Union), where
    generated_args, built_args = get_args(generated_type), get_args(built_type)
    assert len(generated_args) == len(built_args), where
    for index, (one, other) in enumerate(zip(generated_args, built_args, strict=True)):
        _same_type(one, other, f"{where}[{index}]")


def _default(model: type[AvroRecord], name: str) -> Any:
    field = model.model_fields[name]
    value = field.get_default(call_default_factory=True)
    return value.model_dump() if isinstance(value, AvroRecord) else value


def _same_model(generated_model: type[AvroRecord], built: type[AvroRecord]) -> None:
    """The generated class and the run-time model hold the same fields, of the same types, with the same
    defaults (a default factory where the builder has one), under the same config and doc."""
    name = built.__name__
    assert generated_model.__name__.endswith(name)  # the generator qualifies a name two definitions share
    assert generated_model.model_config == built.model_config, name
    assert generated_model.__doc__ == built.__doc__, name
    assert list(generated_model.model_fields) == list(built.model_fields), name
    for field_name, built_field in built.model_fields.items():
        where = f"{name}.{field_name}"
        generated_field = generated_model.model_fields[field_name]
        _same_type(generated_field.annotation, built_field.annotation, where)
        assert generated_field.is_required() == built_field.is_required(), where
        assert (generated_field.default_factory is None) == (built_field.default_factory is None), where
        if not built_field.is_required():
            assert _default(generated_model, field_name) == _default(built, field_name), where


@pytest.mark.parametrize("name", NAMES)
def test_each_class_is_what_the_run_time_builder_makes_of_its_schema(name: str) -> None:
    generated_model = generated.RECORDS[name][SCHEMAS[name].fullname]
    built = model_for_schema(SCHEMAS[name])
    _same_model(generated_model, built)
    assert generated_model.model_json_schema() == built.model_json_schema()


def _schema(name: str, fields: list[dict[str, Any]]) -> Any:
    definition = {"type": "record", "name": name, "doc": "A test event.", "fields": fields}
    return build_record_schema(definition, "prison", {})


def test_different_records_sharing_a_name_get_classes_of_their_own() -> None:
    offence = {"type": "record", "name": "Offence", "fields": [{"name": "code", "type": "string"}]}
    other = {**offence, "fields": [{"name": "wording", "type": "string"}]}
    moved = {**offence, "namespace": "victimhub.court"}
    schemas = {
        "First": _schema("victimhub.prison.First", [{"name": "offence", "type": offence}]),
        "Second": _schema("victimhub.prison.Second", [{"name": "offence", "type": other}]),
        "Third": _schema("victimhub.prison.Third", [{"name": "offence", "type": moved}]),
        "Fourth": _schema("victimhub.prison.Fourth", [{"name": "offence", "type": offence}]),
    }
    names = {(n.fullname, n.pyname) for n in catalogue(schemas).named}

    assert names == {
        ("victimhub.prison.First", "First"),
        ("victimhub.prison.Second", "Second"),
        ("victimhub.prison.Third", "Third"),
        ("victimhub.prison.Fourth", "Fourth"),
        ("victimhub.prison.Offence", "FirstOffence"),  # alike in First and Fourth: one class
        ("victimhub.prison.Offence", "SecondOffence"),
        ("victimhub.court.Offence", "CourtOffence"),
    }


@pytest.mark.parametrize(
    "field",
    [
        {"name": "codes", "type": {"type": "array", "items": "string"}, "default": ["a"]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 0},
        {"name": "raw", "type": {"type": "fixed", "name": "Raw", "size": 4}},
        {"name": "from", "type": "string"},
    ],
    ids=["non-empty-list-default", "date-default", "fixed", "keyword-name"],
)
def test_a_schema_the_generator_would_get_wrong_stops_it(field: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchema):
        catalogue({"Odd": _schema("victimhub.prison.Odd", [field])})


def test_a_changed_schema_makes_the_generated_classes_stale() -> None:
    digests = dict(generated.SCHEMA_DIGESTS)
    digests["PrisonerReleased"] = schema_digest(_schema("victimhub.prison.PrisonerReleased", []))
    del digests["VictimReferred"]

    assert stale_schemas(digests) == ["PrisonerReleased", "VictimReferred"]
