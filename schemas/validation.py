"""Rules an event must meet beyond its Avro schema, with errors that name the field and the rule.

The schema files carry the per-event parts of the contract as extra attributes: `hub.sources` (the agencies
that may publish the event; by default the folder it lives in), `hub.requires` (identifiers that must be
present) and, on a field, `hub.not_future` (a date or instant that cannot be in the future). The rest
(identifier formats, sizes, required combinations) is here.

`parse_event` and `check_event` are the full validation, for what agencies write in JSON. Ingest, given
what fastavro has already read against the schema, runs the same rules compiled per event type
(`event_from_record`).

Messages never repeat the offending value: it may be a victim's personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import Any

from pydantic import ValidationError

from schemas import AGENCIES, RecordSchema, event_schemas
from schemas.models import AvroRecord, assemble, can_assemble, event_model, event_models

IDENTIFIER_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "noms_number": (re.compile(r"[A-Z]\d{4}[A-Z]{2}"), "must be a letter, 4 digits and 2 letters (A1234BC)"),
    "crn": (re.compile(r"[A-Z]\d{6}"), "must be a letter and 6 digits (X123456)"),
    "pnc": (re.compile(r"\d{4}/\d{7}[A-Z]"), "must be YYYY/NNNNNNNA"),
    "cro": (re.compile(r"\d{1,6}/\d{2}[A-Z]"), "must be NNNNNN/YYA"),
    "case_ref": (re.compile(r"[A-Za-z0-9][A-Za-z0-9/\-]{0,39}"), "must be 1-40 letters, digits, / or -"),
    # The hub's own unit codes (routing/data/units.json), which are also part of topic names.
    "unit_code": (re.compile(r"[A-Z0-9]{2,8}"), "must be a unit code: 2-8 capital letters or digits"),
}
# Fields named like an identifier anywhere in an event are held to the identifier's format.
IDENTIFIER_ALIASES = {"removed_noms_number": "noms_number"}

MAX_STRING_LENGTH = 2000
# Shorter limits where a longer value can only be a mistake (and the case store keeps no more).
FIELD_LENGTHS = {
    "name": 200,
    "person_ref": 64,
    "vlo_id": 64,
    "court_code": 200,
    "postcode": 16,
    "language": 16,
}
# Control characters (NUL above all, which PostgreSQL cannot store) are never part of a real value.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_LIST_LENGTH = 200
CUSTODIAL_DISPOSALS = frozenset({"custody", "detention", "dto"})


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (a dotted field path) and what rule."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}" if self.field else self.rule


class InvalidEvent(ValueError):
    """An event that can never be processed. Its message lists every broken rule."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def problems_from_pydantic(error: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        field = _path(tuple(detail["loc"]))
        problems.append(Problem(f"{prefix}{field}" if field else prefix.rstrip("."), detail["msg"]))
    return problems


def schema_for(event_type: str) -> RecordSchema:
    try:
        return event_schemas()[event_type]
    except KeyError:
        raise InvalidEvent([Problem("event_type", "is not an event type the hub knows")]) from None


def allowed_sources(schema: RecordSchema) -> list[str]:
    sources: list[str] = schema.definition.get("hub.sources", [schema.folder])
    return sources


def parse_event(event_type: str, data: dict[str, Any]) -> AvroRecord:
    """Build an event's model from decoded Avro or JSON; InvalidEvent names every wrong field."""
    schema_for(event_type)
    try:
        return event_model(event_type).model_validate(data)
    except ValidationError as error:
        raise InvalidEvent(problems_from_pydantic(error)) from None


def check_event(event: AvroRecord, channel: str | None, today: date) -> None:
    """Apply the rules beyond the schema. `channel` is the source whose inbound topic the event came on."""
    event_type = type(event).__name__
    schema = schema_for(event_type)
    problems = list(_rule_problems(event, schema, channel, today))
    if problems:
        raise InvalidEvent(problems)


def _rule_problems(
    event: AvroRecord, schema: RecordSchema, channel: str | None, today: date
) -> Iterator[Problem]:
    envelope = event.envelope
    agency = envelope.source.agency
    if envelope.event_type != schema.name:
        yield Problem("envelope.event_type", f"must be {schema.name} for this schema")
    if agency not in AGENCIES:
        yield Problem("envelope.source.agency", "is not a known agency code")
    elif agency not in allowed_sources(schema):
        yield Problem("envelope.source.agency", f"{agency} does not publish {schema.name}")
    if channel is not None and agency != channel:
        yield Problem(
            "envelope.source.agency", f"claims another agency than the {channel} channel it came on"
        )
    if envelope.occurred_at.date() > today:
        yield Problem("envelope.occurred_at", "cannot be in the future")
    for required in schema.definition.get("hub.requires", []):
        # "subject.x" names an identifier of the envelope's subject, which agencies write flat as "x"
        in_envelope = required.startswith("subject.")
        if _lookup(envelope if in_envelope else event, required) is None:
            yield Problem(f"envelope.{required}" if in_envelope else required, "is required for this event")
    yield from _field_problems(event, schema.definition, "", today)
    yield from _event_specific_problems(event)


def _lookup(record: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        record = getattr(record, part, None)
    return record


@dataclass(frozen=True)
class _FieldRules:
    """What the rules check on one field of a record: worked out once per record, not for every event."""

    name: str
    identifier: tuple[re.Pattern[str], str] | None  # its format and the rule to name when it is broken
    not_future: bool
    max_length: int | None
    # the record definition of its value (or of its items), if it holds records
    definition: dict[str, Any] | None


# (model, definition) -> the definition and its field rules; kept with the definition so an id is never reused.
_RULES: dict[tuple[type[AvroRecord], int], tuple[dict[str, Any] | None, tuple[_FieldRules, ...]]] = {}


def _rules_of(model: type[AvroRecord], definition: dict[str, Any] | None) -> tuple[_FieldRules, ...]:
    cached = _RULES.get((model, id(definition)))
    if cached is not None and cached[0] is definition:
        return cached[1]
    fields = {f["name"]: f for f in definition["fields"]} if isinstance(definition, dict) else {}
    rules = tuple(
        _FieldRules(
            name=name,
            identifier=IDENTIFIER_FORMATS.get(IDENTIFIER_ALIASES.get(name, name)),
            not_future=bool(fields.get(name, {}).get("hub.not_future")),
            max_length=FIELD_LENGTHS.get(name),
            definition=_record_definition(fields.get(name, {}).get("type")),
        )
        for name in model.model_fields
    )
    _RULES[(model, id(definition))] = (definition, rules)
    return rules


def _field_problems(
    value: Any, definition: dict[str, Any] | None, path: str, today: date
) -> Iterator[Problem]:
    """Walk the model beside its schema: identifier formats, sizes, dates that cannot be in the future."""
    if isinstance(value, AvroRecord):
        for rules in _rules_of(type(value), definition):
            field_value = getattr(value, rules.name)
            if field_value is None:
                continue
            field_path = f"{path}{rules.name}"
            if isinstance(field_value, str):
                if rules.identifier is not None and not rules.identifier[0].fullmatch(field_value):
                    yield Problem(field_path, rules.identifier[1])
                if rules.max_length is not None and len(field_value) > rules.max_length:
                    yield Problem(field_path, f"is longer than {rules.max_length} characters")
                yield from _string_problems(field_value, field_path)
                continue
            if rules.not_future and _day(field_value) > today:
                yield Problem(field_path, "cannot be in the future")
            if isinstance(field_value, (AvroRecord, list, dict)):
                yield from _field_problems(field_value, rules.definition, f"{field_path}.", today)
    elif isinstance(value, list):
        if len(value) > MAX_LIST_LENGTH:
            yield Problem(path.rstrip("."), f"has more than {MAX_LIST_LENGTH} items")
        for index, item in enumerate(value):
            yield from _field_problems(item, definition, f"{path}{index}.", today)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _field_problems(item, definition, f"{path}{key}.", today)
    elif isinstance(value, str):
        yield from _string_problems(value, path.rstrip("."))


def _string_problems(value: str, field_path: str) -> Iterator[Problem]:
    if len(value) > MAX_STRING_LENGTH:
        yield Problem(field_path, f"is longer than {MAX_STRING_LENGTH} characters")
    if CONTROL_CHARACTERS.search(value):
        yield Problem(field_path, "contains a control character")


def _record_definition(schema: Any) -> dict[str, Any] | None:
    """The record definition inside a field's type (through unions, arrays, maps and names), if any."""
    if isinstance(schema, str):
        return _named_records().get(schema)
    if isinstance(schema, list):
        records = [_record_definition(branch) for branch in schema]
        return next((r for r in records if r is not None), None)
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            return schema
        if schema.get("type") == "array":
            return _record_definition(schema["items"])
        if schema.get("type") == "map":
            return _record_definition(schema["values"])
    return None


@cache
def _named_records() -> dict[str, dict[str, Any]]:
    """Every record definition by full name, so a record referred to by name is checked like its first use."""
    named: dict[str, dict[str, Any]] = {}

    def collect(schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                collect(branch)
        elif isinstance(schema, dict):
            if schema.get("type") == "record":
                named.setdefault(schema["name"], schema)
                for field in schema["fields"]:
                    collect(field["type"])
            elif schema.get("type") in ("array", "map"):
                collect(schema.get("items") or schema.get("values"))
            elif isinstance(schema.get("type"), (dict, list)):
                collect(schema["type"])

    for schema in event_schemas().values():
        collect(schema.definition)
    return named


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _custodial_term_problems(
    disposal: str | None, term: int | None, disposal_field: str, term_field: str
) -> Iterator[Problem]:
    if disposal in CUSTODIAL_DISPOSALS and not term:
        yield Problem(term_field, f"is required for a {disposal} disposal ({disposal_field})")
    if term is not None and not 0 < term <= 1200:
        yield Problem(term_field, "must be between 1 and 1200")


def _sentence_imposed(event: AvroRecord) -> Iterator[Problem]:
    if not event.offences:
        yield Problem("offences", "must list at least one offence")
    yield from _custodial_term_problems(
        event.disposal, event.custodial_term_months, "disposal", "custodial_term_months"
    )


def _appeal_determined(event: AvroRecord) -> Iterator[Problem]:
    if event.outcome == "sentence_varied" and event.new_disposal is None:
        yield Problem("new_disposal", "is required when the outcome is sentence_varied")
    yield from _custodial_term_problems(
        event.new_disposal,
        event.new_custodial_term_months,
        "new_disposal",
        "new_custodial_term_months",
    )


def _mappa_management_changed(event: AvroRecord) -> Iterator[Problem]:
    if event.level not in (1, 2, 3):
        yield Problem("level", "must be 1, 2 or 3")
    if event.category not in (1, 2, 3, 4):
        yield Problem("category", "must be 1, 2, 3 or 4")


def _offender_identifiers_linked(event: AvroRecord) -> Iterator[Problem]:
    subject = event.envelope.subject
    if subject.noms_number is None and subject.pnc is None and subject.cro is None:
        yield Problem("envelope.subject", "must link the CRN to at least one of noms_number, pnc, cro")


def _release_decided(event: AvroRecord) -> Iterator[Problem]:
    date_field = "first_release_date" if hasattr(event, "first_release_date") else "release_date"
    if event.decision == "granted" and getattr(event, date_field) is None:
        yield Problem(date_field, "is required when the decision is granted")


# Required combinations the schema cannot express, by event type.
_EVENT_RULES: dict[str, Callable[[AvroRecord], Iterator[Problem]]] = {
    "SentenceImposed": _sentence_imposed,
    "AppealDetermined": _appeal_determined,
    "MappaManagementChanged": _mappa_management_changed,
    "OffenderIdentifiersLinked": _offender_identifiers_linked,
    "TemporaryReleaseDecided": _release_decided,
    "HomeDetentionCurfewDecided": _release_decided,
}


def _event_specific_problems(event: AvroRecord) -> Iterator[Problem]:
    rule = _EVENT_RULES.get(type(event).__name__)
    if rule is not None:
        yield from rule(event)


# ----------------------------------------------------------------------------------------------------------
# Ingest's hot path: the same rules, compiled per event type, on the record fastavro decoded
# ----------------------------------------------------------------------------------------------------------


def event_from_record(
    event_type: str, record: dict[str, Any], channel: str | None, today: date
) -> AvroRecord:
    """The event fastavro decoded from an agency topic, held to the rules: ingest's work on every message.

    fastavro has already read the record against its schema, into the types the models declare, so the event
    is built without validating it again, and the rules run as a check compiled once per event type that says
    only whether the record breaks any. An event it does not clear goes through `check_event`, so a refused
    event is refused with the same InvalidEvent, naming every wrong field, as `hub publish` gives. Event types
    whose schema has a shape the compiled check does not cover take the full way (`parse_event`).

    `record` must be what fastavro read with the event type's schema (the hub's reader schema) as the writer's
    schema too: its shape, types and field order are trusted, not checked. It becomes the event's own: the
    caller must not use it afterwards."""
    compiled = _compiled(event_type)
    if compiled is None:
        event = parse_event(event_type, record)
    else:
        event, clear = compiled.run(record, channel, today)
        if clear:
            return event
    check_event(event, channel=channel, today=today)
    return event


class _Uncompiled(Exception):
    """A schema shape the compiled check does not cover (maps, unions of several types, ...)."""


@dataclass(frozen=True)
class _RecordCheck:
    """Which fields of one record definition the rules look at, and for what; and the record's model."""

    model: type[AvroRecord]
    texts: tuple[str, ...]  # every field holding text (strings, enum symbols)
    identifiers: tuple[tuple[str, re.Pattern[str]], ...]
    limits: tuple[tuple[str, int], ...]  # text fields held to fewer than MAX_STRING_LENGTH characters
    not_future: tuple[str, ...]
    records: tuple[tuple[str, _RecordCheck], ...]
    lists: tuple[str, ...]  # every field holding a list, held to MAX_LIST_LENGTH items
    record_lists: tuple[tuple[str, _RecordCheck], ...]
    text_lists: tuple[str, ...]


# build(record, today) -> (the event, whether a rule on a field is broken, the text met: optional fields' None too)
_Build = Callable[[dict[str, Any], date], tuple[AvroRecord, bool, list[str | None]]]


@dataclass(frozen=True)
class _EventCheck:
    """Every rule on one event type, worked out from its schema once."""

    event_type: str
    agencies: frozenset[str]  # the known agencies that may publish it
    requires: tuple[tuple[str, ...], ...]  # key paths from the event record to each required identifier
    build: _Build  # the rules on fields, written as Python by _BuildSource
    event_rule: Callable[[AvroRecord], Iterator[Problem]] | None
    source: str = field(repr=False)  # `build`'s source, for a reader who wants to see it

    def run(self, record: dict[str, Any], channel: str | None, today: date) -> tuple[AvroRecord, bool]:
        """The event built from `record`, and True when it breaks no rule (False: `check_event` must say
        which it breaks)."""
        envelope = record["envelope"]
        agency = envelope["source"]["agency"]
        clear = not (
            envelope["event_type"] != self.event_type
            or agency not in self.agencies
            or (channel is not None and agency != channel)
            or envelope["occurred_at"].date() > today
        )
        for path in self.requires:
            value: Any = record
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                clear = False
        event, broken, texts = self.build(record, today)
        if broken or not clear:
            return event, False
        # All the text at once: a space joins the values because it is neither a control character nor
        # unprintable, and a printable text (the common case, checked in C) has no control character.
        joined = " ".join(filter(None, texts))
        if len(joined) > MAX_STRING_LENGTH and max(map(len, filter(None, texts))) > MAX_STRING_LENGTH:
            return event, False
        if not joined.isprintable() and CONTROL_CHARACTERS.search(joined):
            return event, False
        return event, self.event_rule is None or next(self.event_rule(event), None) is None


@cache
def _compiled(event_type: str) -> _EventCheck | None:
    """The compiled check of an event type; None when its schema has a shape the check does not cover.
    InvalidEvent for an event type the hub does not know."""
    schema = schema_for(event_type)
    try:
        record = _compile_record(schema.definition, event_models(event_type), {})
    except _Uncompiled:
        return None
    requires = tuple(
        ("envelope", *required.split(".")) if required.startswith("subject.") else tuple(required.split("."))
        for required in schema.definition.get("hub.requires", [])
    )
    source = _BuildSource(record)
    return _EventCheck(
        event_type=schema.name,
        agencies=frozenset(allowed_sources(schema)) & frozenset(AGENCIES),
        requires=requires,
        build=source.function(f"<compiled rules of {schema.name}>"),
        event_rule=_EVENT_RULES.get(schema.name),
        source=source.text,
    )


class _BuildSource:
    """The rules on one event's fields written as straight-line Python, a statement or two per rule and field,
    as `dataclasses` writes an `__init__`: every message then costs one pass over its fields, with no loop
    over rules and no reflection. What it refers to (models, patterns, item getters) it is given as globals."""

    def __init__(self, check: _RecordCheck) -> None:
        self.globals: dict[str, Any] = {"assemble": assemble, "_day": _day}
        self.lines = ["def build(r0, today):", "    texts = []", "    broken = False"]
        self._record(check, "r0", 1, 0)
        self.lines.append("    return r0, broken, texts")
        self.text = "\n".join(self.lines) + "\n"

    def function(self, filename: str) -> _Build:
        exec(compile(self.text, filename, "exec"), self.globals)
        build: _Build = self.globals["build"]
        return build

    def _global(self, value: Any, prefix: str) -> str:
        name = f"{prefix}{len(self.globals)}"
        self.globals[name] = value
        return name

    def _record(self, check: _RecordCheck, var: str, indent: int, level: int) -> None:
        """Statements that check the record dict in `var` and leave its model in `var`."""

        def emit(*lines: str) -> None:
            self.lines.extend("    " * indent + line for line in lines)

        if len(check.texts) == 1:
            emit(f"texts.append({var}[{check.texts[0]!r}])")
        elif check.texts:
            emit(f"texts += {self._global(itemgetter(*check.texts), 'texts_of_')}({var})")
        for name, pattern in check.identifiers:
            fullmatch = self._global(pattern.fullmatch, "format_")
            emit(
                f"value = {var}[{name!r}]",
                f"if value is not None and not {fullmatch}(value):",
                "    broken = True",
            )
        for name, limit in check.limits:
            emit(
                f"value = {var}[{name!r}]",
                f"if value is not None and len(value) > {limit}:",
                "    broken = True",
            )
        for name in check.not_future:
            emit(
                f"value = {var}[{name!r}]",
                "if value is not None and _day(value) > today:",
                "    broken = True",
            )
        child = f"r{level + 1}"
        for name, inner in check.records:
            emit(f"{child} = {var}[{name!r}]", f"if {child} is not None:")
            self._record(inner, child, indent + 1, level + 1)
            emit(f"    {var}[{name!r}] = {child}")
        for name in check.lists:
            emit(f"if len({var}[{name!r}] or ()) > {MAX_LIST_LENGTH}:", "    broken = True")
        for name, inner in check.record_lists:
            items, built = f"items{level + 1}", f"built{level + 1}"
            emit(
                f"{items} = {var}[{name!r}]",
                f"if {items}:",
                f"    {built} = []",
                f"    for {child} in {items}:",
            )
            emit(f"        if {child} is not None:")
            self._record(inner, child, indent + 3, level + 1)
            emit(f"        {built}.append({child})", f"    {var}[{name!r}] = {built}")
        for name in check.text_lists:
            emit(f"texts += {var}[{name!r}] or ()")
        emit(f"{var} = assemble({self._global(check.model, 'model_')}, {var})")


def _compile_record(
    definition: dict[str, Any], models: Mapping[str, type[AvroRecord]], named: dict[str, tuple[str, Any]]
) -> _RecordCheck:
    """The check of one record definition. `models` are the event's models by record name; `named` holds the
    kinds of the named types defined so far in the schema (Avro defines a name at its first use and refers to
    it by name after), a record once its check is complete."""
    name = definition["name"]
    model = models.get(name)
    if model is None or not can_assemble(model):
        raise _Uncompiled(f"{name} has no model that can be built without validation")
    texts: list[str] = []
    identifiers: list[tuple[str, re.Pattern[str]]] = []
    limits: list[tuple[str, int]] = []
    not_future: list[str] = []
    records: list[tuple[str, _RecordCheck]] = []
    lists: list[str] = []
    record_lists: list[tuple[str, _RecordCheck]] = []
    text_lists: list[str] = []
    for avro_field in definition["fields"]:
        field_name = avro_field["name"]
        kind, inner = _kind(avro_field["type"], models, named)
        if avro_field.get("hub.not_future"):
            if kind != "instant":
                raise _Uncompiled(f"{name}.{field_name}: hub.not_future on a value that is not a date")
            not_future.append(field_name)
        if kind == "text":
            texts.append(field_name)
            identifier = IDENTIFIER_FORMATS.get(IDENTIFIER_ALIASES.get(field_name, field_name))
            if identifier is not None:
                identifiers.append((field_name, identifier[0]))
            limit = FIELD_LENGTHS.get(field_name)
            if limit is not None and limit < MAX_STRING_LENGTH:
                limits.append((field_name, limit))
        elif kind == "record":
            records.append((field_name, inner))
        elif kind == "list":
            lists.append(field_name)
            item_kind, item_check = inner
            if item_kind == "record":
                record_lists.append((field_name, item_check))
            elif item_kind == "text":
                text_lists.append(field_name)
            elif item_kind not in ("other", "instant"):
                raise _Uncompiled(f"{name}.{field_name}: a list of {item_kind}")
    check = _RecordCheck(
        model=model,
        texts=tuple(texts),
        identifiers=tuple(identifiers),
        limits=tuple(limits),
        not_future=tuple(not_future),
        records=tuple(records),
        lists=tuple(lists),
        record_lists=tuple(record_lists),
        text_lists=tuple(text_lists),
    )
    named[name] = ("record", check)
    return check


# What fastavro reads for each logical type the models know: a UUID object, a date, an aware datetime.
_LOGICAL_KINDS = {
    ("uuid", "string"): "other",
    ("date", "int"): "instant",
    ("timestamp-micros", "long"): "instant",
    ("timestamp-millis", "long"): "instant",
}
_PRIMITIVE_KINDS = {
    "null": "null",
    "string": "text",
    "boolean": "other",
    "int": "other",
    "long": "other",
    "float": "other",
    "double": "other",
    "bytes": "other",
}


def _kind(
    schema: Any, models: Mapping[str, type[AvroRecord]], named: dict[str, tuple[str, Any]]
) -> tuple[str, Any]:
    """What a value of this Avro type is to the rules: ("text", None), ("instant", None) (a date or an
    instant), ("other", None) (nothing to check), ("null", None), ("record", its check) or ("list", the items'
    kind)."""
    if isinstance(schema, str):
        if schema in _PRIMITIVE_KINDS:
            return _PRIMITIVE_KINDS[schema], None
        if schema not in named:  # unknown, or a record referring to itself
            raise _Uncompiled(f"a reference to {schema}")
        return named[schema]
    if isinstance(schema, list):
        branches = [branch for branch in (_kind(b, models, named) for b in schema) if branch[0] != "null"]
        if not branches:
            return "null", None
        kinds = {kind for kind, _ in branches}
        if len(branches) > 1 and not (len(kinds) == 1 and kinds <= {"text", "instant", "other"}):
            raise _Uncompiled("a union of several types")
        return branches[0]
    kind = schema["type"]
    if "logicalType" in schema:
        if (schema["logicalType"], kind) not in _LOGICAL_KINDS:
            raise _Uncompiled(f"logical type {schema['logicalType']} on {kind}")
        return _LOGICAL_KINDS[(schema["logicalType"], kind)], None
    if kind == "record":
        return "record", _compile_record(schema, models, named)
    if kind == "enum":
        named[schema["name"]] = ("text", None)
        return named[schema["name"]]
    if kind == "fixed":
        named[schema["name"]] = ("other", None)
        return named[schema["name"]]
    if kind == "array":
        return "list", _kind(schema["items"], models, named)
    if kind == "map":
        raise _Uncompiled("a map")
    return _kind(kind, models, named)
