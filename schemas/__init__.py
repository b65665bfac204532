"""The hub's Avro schemas: the contract agencies publish against and VLO queues read.

Each `.avsc` file holds one named type. `common/` holds the shared named types (the envelope, identifiers,
address, licence condition); every other folder holds the events of one source, `vlo/` the notification units
read, and `outbound/` the records other agencies read (docs/domain.md section 8). `load_schemas` turns the files into self-contained schemas (shared types inlined where first
used) so that each has one canonical form and one fingerprint. `AvroRecord` is the base of every model of
a record (`schemas/events.py`, generated from the files, and `schemas/models.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from pydantic import BaseModel, ConfigDict

SCHEMA_DIR = Path(__file__).parent
COMMON_FOLDER = "common"
NOTIFICATION_FOLDER = "vlo"
OUTBOUND_FOLDER = "outbound"

# The agency codes of docs/domain.md section 2.1, in the order operators see them.
AGENCIES = (
    "court",
    "witness-care",
    "youth-justice",
    "prison",
    "probation",
    "parole-board",
    "hospital",
    "home-office",
    "vcs",
)

# The agencies the hub writes to (docs/domain.md section 8), each on its own topic `outbound.<agency>`: the
# decision-makers a licence condition request goes to, and the offender-facing systems told of the scheme flag.
OUTBOUND_RECIPIENTS = ("probation", "parole-board", "prison")

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class AvroRecord(BaseModel):
    """Base of every model of an Avro record: unknown fields are errors, not silently dropped.

    Here rather than in `schemas.models`, which serves the generated classes: `schemas.events` subclasses it
    without importing `schemas.models`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    if TYPE_CHECKING:
        # Code that takes any record (`event: AvroRecord`) reads fields no type checker can know: reading one is
        # Any. Code that names a generated class (`event: SentenceImposed`) gets the field's declared type.
        def __getattr__(self, name: str) -> Any: ...


@dataclass(frozen=True)
class RecordSchema:
    """One top-level record schema, self-contained, with its single-object fingerprint."""

    name: str  # short name: "SentenceImposed"
    folder: str  # the publishing source's folder: "court", or "vlo" for the notification
    definition: dict[str, Any]  # self-contained JSON definition
    parsed: dict[str, Any]  # fastavro's parsed form, ready for reading and writing
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian as framed

    @property
    def fullname(self) -> str:
        name: str = self.parsed["name"]
        return name


def _read(path: Path) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))  # each file holds one object
    return definition


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _inline(schema: Any, named: dict[str, dict[str, Any]], defined: set[str], namespace: str | None) -> Any:
    """Replace references to shared types by their definition at first use, by name afterwards."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        fullname = _fullname(schema, namespace)
        if fullname in defined or fullname not in named:
            return fullname
        return _inline(named[fullname], named, defined, namespace)
    if isinstance(schema, list):
        return [_inline(branch, named, defined, namespace) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        fullname = _fullname(schema["name"], schema.get("namespace", namespace))
        defined.add(fullname)
        namespace = fullname.rpartition(".")[0] or None
        out = {**schema, "name": fullname}
        out.pop("namespace", None)
        if kind == "record":
            out["fields"] = [
                {**field, "type": _inline(field["type"], named, defined, namespace)}
                for field in schema["fields"]
            ]
        return out
    if kind == "array":
        return {**schema, "items": _inline(schema["items"], named, defined, namespace)}
    if kind == "map":
        return {**schema, "values": _inline(schema["values"], named, defined, namespace)}
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
        return {**schema, "type": _inline(kind, named, defined, namespace)}
    return schema


def _shared_types(directory: Path) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    for path in sorted((directory / COMMON_FOLDER).glob("*.avsc")):
        definition = _read(path)
        named[_fullname(definition["name"], definition.get("namespace"))] = definition
    return named


def build_record_schema(
    definition: dict[str, Any], folder: str, shared: dict[str, dict[str, Any]]
) -> RecordSchema:
    """Make one record schema self-contained and fingerprint it."""
    standalone = _inline(definition, shared, set(), definition.get("namespace"))
    # A record's definition parses to a dict (fastavro's return type also covers names and unions).
    parsed = cast("dict[str, Any]", parse_schema(standalone, _write_hint=False))
    canonical = to_parsing_canonical_form(parsed)
    # fastavro renders the fingerprint as its little-endian bytes, which is the order single-object framing uses
    digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return RecordSchema(
        name=definition["name"].rpartition(".")[2],
        folder=folder,
        definition=standalone,
        parsed=parsed,
        fingerprint=digest,
    )


def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, RecordSchema]:
    """Every event schema and the notification schema, by short name.

    The shipped schemas are read once, so every part of the hub holds the same objects; any other directory
    (a release check, a test's edited copy) is read afresh each time.
    """
    if directory == SCHEMA_DIR:
        return _shipped_schemas()
    return _read_schemas(directory)


@cache
def _shipped_schemas() -> dict[str, RecordSchema]:
    return _read_schemas(SCHEMA_DIR)


def _read_schemas(directory: Path) -> dict[str, RecordSchema]:
    shared = _shared_types(directory)
    schemas: dict[str, RecordSchema] = {}
    for path in sorted(directory.glob("*/*.avsc")):
        folder = path.parent.name
        if folder == COMMON_FOLDER:
            continue
        record = build_record_schema(_read(path), folder, shared)
        if record.name in schemas:
            raise ValueError(
                f"schema {record.name} is defined twice ({schemas[record.name].folder}, {folder})"
            )
        schemas[record.name] = record
    return schemas


def identifier_kinds(directory: Path = SCHEMA_DIR) -> tuple[str, ...]:
    """The identifiers of a person (noms_number, crn, ...), as the shared Identifiers record lists them."""
    return tuple(field["name"] for field in _read(directory / COMMON_FOLDER / "Identifiers.avsc")["fields"])


@cache
def event_schemas() -> Mapping[str, RecordSchema]:
    """The inbound agency events, by event type (built once: ingest asks for it for every event)."""
    return {
        name: s
        for name, s in load_schemas().items()
        if s.folder not in (NOTIFICATION_FOLDER, OUTBOUND_FOLDER)
    }


def outbound_schemas() -> Mapping[str, RecordSchema]:
    """The records the hub writes for other agencies, by record type."""
    return {name: s for name, s in load_schemas().items() if s.folder == OUTBOUND_FOLDER}


def notification_schema() -> RecordSchema:
    return load_schemas()["VictimNotification"]
