"""The hub's pydantic models of its Avro records.

The classes of the events and of the notification are generated from the `.avsc` files into `schemas/events.py`
(`python -m schemas.generate`), where code can name them: `event_model("PrisonerReleased")` is
`events.PrisonerReleased`, `NotificationModel` is `events.VictimNotification`. Importing this module fails if
`schemas/events.py` was generated from other definitions than the current files, so stale classes never meet
records of a changed schema. `model_for_schema` builds a model at run time, by the rules the generator writes
(tests/unit/test_generated_events.py holds the two alike), for any other record schema: the outbound records,
a schema in a test.

Every model accepts what fastavro reads and what an agency writes in JSON, and `model_dump()` gives back what
fastavro writes. Rules that Avro cannot express live in `validation.py`. `assemble` makes a model of values
already of its types (what fastavro reads) without validating them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from types import GenericAlias
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, create_model

from schemas import AvroRecord as AvroRecord  # the hub imports it from here
from schemas import RecordSchema
from schemas.events import EVENTS, RECORDS, SCHEMA_DIGESTS, VictimNotification
from schemas.generate import COMMAND, stale_schemas

if _stale := stale_schemas(SCHEMA_DIGESTS):
    raise RuntimeError(
        f"schemas/events.py is out of date for {', '.join(_stale)}: run `{COMMAND}` (docs/contributing.md, "
        "adding an event type)"
    )


def _logical(schema: dict[str, Any]) -> Any:
    match schema.get("logicalType"), schema["type"]:
        case "uuid", "string":
            return uuid.UUID
        case "date", "int":
            return date
        case (("timestamp-micros" | "timestamp-millis"), "long"):
            return AwareDatetime
    return None


_PRIMITIVE_TYPES: dict[str, Any] = {
    "string": str,
    "int": int,
    "long": int,
    "boolean": bool,
    "float": float,
    "double": float,
    "bytes": bytes,
    "null": None,
}


class _Builder:
    """Walks one self-contained schema, remembering named types as Avro does. `schemas/generate.py` writes the
    same types and defaults as source code: a change here needs the same change there."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def python_type(self, schema: Any) -> Any:
        if isinstance(schema, str):
            return _PRIMITIVE_TYPES[schema] if schema in _PRIMITIVE_TYPES else self.named[schema]
        if isinstance(schema, list):
            branches = [self.python_type(branch) for branch in schema]
            union = branches[0]
            for branch in branches[1:]:
                union = union | branch if union is not None else branch | None
            return union
        kind = schema["type"]
        if (logical := _logical(schema)) is not None:
            return logical
        if kind == "record":
            return self.record(schema)
        if kind == "enum":
            self.named[schema["name"]] = Literal[tuple(schema["symbols"])]
            return self.named[schema["name"]]
        if kind == "array":
            return GenericAlias(list, self.python_type(schema["items"]))  # list[items], made at run time
        if kind == "map":
            return GenericAlias(dict, (str, self.python_type(schema["values"])))
        return self.python_type(kind)

    def record(self, schema: dict[str, Any]) -> type[AvroRecord]:
        fields: dict[str, Any] = {}
        for field in schema["fields"]:
            annotation = self.python_type(field["type"])
            if "default" not in field:
                default: Any = ...
            elif (
                isinstance(field["default"], dict)
                and isinstance(annotation, type)
                and issubclass(annotation, AvroRecord)
            ):
                # A record's default is its fields' defaults: build the model, not a bare dict.
                default = Field(default_factory=lambda model=annotation, data=field["default"]: model(**data))
            elif isinstance(field["default"], (list, dict)):
                default = Field(default_factory=type(field["default"]))
            else:
                default = field["default"]
            fields[field["name"]] = (annotation, default)
        model = create_model(schema["name"].rpartition(".")[2], __base__=AvroRecord, **fields)
        model.__doc__ = schema.get("doc")
        self.named[schema["name"]] = model
        return model


def model_for_schema(schema: RecordSchema) -> type[AvroRecord]:
    """A model of any record schema, built at run time (the events' and the notification's are generated)."""
    return _Builder().record(schema.definition)


def event_model(event_type: str) -> type[AvroRecord]:
    """The generated class of one agency event; KeyError for an event type the hub does not know."""
    return EVENTS[event_type]


def event_models(event_type: str) -> Mapping[str, type[AvroRecord]]:
    """The classes of one agency event and of every record in it, by the record's full name: the classes that
    `event_model(event_type)` holds in its fields."""
    return RECORDS[event_type]


NotificationModel = VictimNotification


def can_assemble(model: type[AvroRecord]) -> bool:
    """Whether `assemble` can make this model: true of every model generated here."""
    return model.__pydantic_post_init__ is None and not model.__private_attributes__


def assemble(model: type[AvroRecord], values: dict[str, Any]) -> AvroRecord:
    """The model holding `values`, which are every field's value, each already the type the model declares (as
    fastavro reads a record of the model's own schema, once its inner records are models): no validation.

    `values` becomes the model's own dict. This sets the slots `BaseModel.model_construct` sets for a model
    without private attributes or post-init, given every field; model_construct also works out aliases and
    defaults field by field, which a complete record of the model's own fields never needs, and on ingest's
    hot path that work would cost more than the rest of building the model."""
    instance = _new_instance(model)
    _set_dict(instance, values)
    _set_fields_set(instance, set(values))
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


_new_instance = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
