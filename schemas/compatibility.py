"""The schema evolution guard: every schema must read what each of its released versions wrote.

Released versions are kept self-contained under `released/<folder>/<Name>.v<N>.avsc`. `check` compares the
current schemas with them using the compatibility checker of Apache's `avro` package (reader = current,
writer = released: backward compatibility, so agencies still on an old version keep being read). `release`
records the current version of every schema that changed. The codec also reads data written with any
released version, by resolving it into the current schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas import SCHEMA_DIR, RecordSchema, build_record_schema, load_schemas

RELEASED_FOLDER = "released"
_VERSION = re.compile(r"^(?P<name>\w+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class ReleasedVersion:
    name: str
    version: int
    schema: RecordSchema


@dataclass(frozen=True)
class Incompatibility:
    name: str
    version: int | None  # None: the released schema no longer exists at all
    reason: str

    def __str__(self) -> str:
        against = f"released v{self.version}" if self.version is not None else "its released versions"
        return f"{self.name}: cannot read data written with {against}: {self.reason}"


def released_versions(directory: Path = SCHEMA_DIR) -> list[ReleasedVersion]:
    found = []
    for path in sorted((directory / RELEASED_FOLDER).glob("*/*.avsc")):
        match = _VERSION.match(path.name)
        if match is None:
            continue
        definition = json.loads(path.read_text(encoding="utf-8"))
        schema = build_record_schema(definition, path.parent.name, {})
        found.append(ReleasedVersion(match["name"], int(match["version"]), schema))
    return found


def _avro(schema: RecordSchema) -> avro.schema.Schema:
    # Apache avro rejects the hub's extra attributes on nothing, but needs plain JSON text.
    return avro.schema.parse(json.dumps(schema.definition))


def check(directory: Path = SCHEMA_DIR) -> list[Incompatibility]:
    """Every way the current schemas break backward compatibility with the released ones."""
    current = load_schemas(directory)
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro leaves __init__ bare
    problems = []
    for released in released_versions(directory):
        reader = current.get(released.name)
        if reader is None:
            problems.append(Incompatibility(released.name, None, "the schema was removed"))
            continue
        result = checker.get_compatibility(_avro(reader), _avro(released.schema))
        if result.compatibility is not SchemaCompatibilityType.compatible:
            reasons = "; ".join(sorted({str(message) for message in result.messages})) or "incompatible"
            problems.append(Incompatibility(released.name, released.version, reasons))
    return problems


def release(directory: Path = SCHEMA_DIR) -> list[ReleasedVersion]:
    """Record the current version of every schema that differs from its latest released version."""
    latest: dict[str, ReleasedVersion] = {}
    for version in released_versions(directory):
        if version.name not in latest or version.version > latest[version.name].version:
            latest[version.name] = version
    written = []
    for name, schema in sorted(load_schemas(directory).items()):
        previous = latest.get(name)
        if previous is not None and previous.schema.fingerprint == schema.fingerprint:
            continue
        number = previous.version + 1 if previous else 1
        path = directory / RELEASED_FOLDER / schema.folder / f"{name}.v{number}.avsc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema.definition, indent=2) + "\n", encoding="utf-8")
        written.append(ReleasedVersion(name, number, schema))
    return written


@cache
def older_writers(directory: Path = SCHEMA_DIR) -> tuple[RecordSchema, ...]:
    """Released versions that differ from the current ones: the codec reads data written with them too."""
    current = {schema.fingerprint for schema in load_schemas(directory).values()}
    return tuple(v.schema for v in released_versions(directory) if v.schema.fingerprint not in current)
