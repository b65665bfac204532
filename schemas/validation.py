"""Rules an event must meet beyond its Avro schema, with errors that name the field and the rule.

The schema files carry the per-event parts of the contract as extra attributes: `hub.sources` (the agencies
that may publish the event; by default the folder it lives in), `hub.requires` (identifiers that must be
present) and, on a field, `hub.not_future` (a date or instant that cannot be in the future). The rest
(identifier formats, sizes, required combinations) is here.

Messages never repeat the offending value: it may be a victim's personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from schemas import AGENCIES, RecordSchema, event_schemas
from schemas.models import AvroRecord, event_model

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
    return schema.definition.get("hub.sources", [schema.folder])


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
    definition: Any  # the record definition of its value (or of its items), if it holds records


# (model, definition) -> the definition and its field rules; kept with the definition so an id is never reused.
_RULES: dict[tuple[type, int], tuple[Any, tuple[_FieldRules, ...]]] = {}


def _rules_of(model: type[AvroRecord], definition: Any) -> tuple[_FieldRules, ...]:
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


def _field_problems(value: Any, definition: Any, path: str, today: date) -> Iterator[Problem]:
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


def _record_definition(schema: Any) -> Any:
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


def _custodial_term_problems(disposal: str | None, term: int | None, disposal_field: str, term_field: str):
    if disposal in CUSTODIAL_DISPOSALS and not term:
        yield Problem(term_field, f"is required for a {disposal} disposal ({disposal_field})")
    if term is not None and not 0 < term <= 1200:
        yield Problem(term_field, "must be between 1 and 1200")


def _event_specific_problems(event: AvroRecord) -> Iterator[Problem]:
    """Required combinations the schema cannot express."""
    match type(event).__name__:
        case "SentenceImposed":
            if not event.offences:
                yield Problem("offences", "must list at least one offence")
            yield from _custodial_term_problems(
                event.disposal, event.custodial_term_months, "disposal", "custodial_term_months"
            )
        case "AppealDetermined":
            if event.outcome == "sentence_varied" and event.new_disposal is None:
                yield Problem("new_disposal", "is required when the outcome is sentence_varied")
            yield from _custodial_term_problems(
                event.new_disposal,
                event.new_custodial_term_months,
                "new_disposal",
                "new_custodial_term_months",
            )
        case "MappaManagementChanged":
            if event.level not in (1, 2, 3):
                yield Problem("level", "must be 1, 2 or 3")
            if event.category not in (1, 2, 3, 4):
                yield Problem("category", "must be 1, 2, 3 or 4")
        case "OffenderIdentifiersLinked":
            subject = event.envelope.subject
            if subject.noms_number is None and subject.pnc is None and subject.cro is None:
                yield Problem(
                    "envelope.subject", "must link the CRN to at least one of noms_number, pnc, cro"
                )
        case "TemporaryReleaseDecided" | "HomeDetentionCurfewDecided":
            date_field = "first_release_date" if hasattr(event, "first_release_date") else "release_date"
            if event.decision == "granted" and getattr(event, date_field) is None:
                yield Problem(date_field, "is required when the decision is granted")
