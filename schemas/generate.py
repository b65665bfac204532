"""Writes `schemas/events.py`: the pydantic classes of the hub's Avro records, as source code a type checker reads.

    .venv/bin/python -m schemas.generate           # rewrite schemas/events.py from the .avsc files
    .venv/bin/python -m schemas.generate --check   # exit 1 if schemas/events.py is out of date

One class per event type (named exactly as the event type) and for the notification, one per named record
inside them, and a `Literal` alias per enum. The Avro types become Python types as `model_for_schema`
(`schemas/models.py`) makes them at run time, field for field and default for default;
`tests/unit/test_generated_events.py` holds the two to it and fails while `schemas/events.py` is not what this
writes now.

Names are the Avro short names. Where different definitions share one (two namespaces, or one full name defined
differently in two schemas), each is qualified: by its namespace's last part (`CourtOffence`), else by the
schema that first defines it (`SentenceImposedOffence`). An event class always keeps its event type's name.

A schema shape the run-time builder gets wrong or cannot build (a recursive record, `fixed`, a non-empty list
or map default, a record default inside a union, a default of another type than its field's) stops the
generator with the field it is on, rather than writing code that differs from the run-time models.
"""

from __future__ import annotations

import argparse
import builtins
import hashlib
import json
import keyword
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas import (
    NOTIFICATION_FOLDER,
    OUTBOUND_FOLDER,
    SCHEMA_DIR,
    RecordSchema,
    event_schemas,
    notification_schema,
)

EVENTS_PATH = SCHEMA_DIR / "events.py"
COMMAND = "python -m schemas.generate"
LINE_LENGTH = 110  # pyproject.toml's [tool.ruff]
_NOT_EVENTS = (NOTIFICATION_FOLDER, OUTBOUND_FOLDER)  # as schemas.event_schemas

# Names the generated module defines or imports besides the records' and enums' own.
_MODULE_NAMES = frozenset(
    {
        "AvroRecord",
        "AwareDatetime",
        "Field",
        "Final",
        "Literal",
        "Mapping",
        "TypeAlias",
        "UUID",
        "date",
        "Event",
        "EVENTS",
        "RECORDS",
        "SCHEMA_DIGESTS",
    }
)
_RESERVED = (
    _MODULE_NAMES | frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
)

# What model_for_schema makes of each primitive and logical type.
_PRIMITIVES = {
    "string": "str",
    "int": "int",
    "long": "int",
    "boolean": "bool",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
}
_LOGICAL = {
    ("uuid", "string"): "UUID",
    ("date", "int"): "date",
    ("timestamp-micros", "long"): "AwareDatetime",
    ("timestamp-millis", "long"): "AwareDatetime",
}
# The Python values a scalar default may be to suit each type (the builder keeps the JSON value as it is).
_SCALAR_DEFAULTS: dict[str, tuple[type[object], ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


class UnsupportedSchema(ValueError):
    """A schema the generator does not write a class for (see the module's docstring)."""


# A Python type, before names are given: ("py", "str"), ("none",), ("named", index), ("list", T), ("dict", T),
# ("union", (T, ...)).
PyType = tuple[Any, ...]


@dataclass
class _Field:
    name: str
    type: PyType
    default: tuple[Any, ...]  # ("required",), ("value", v), ("list",), ("dict",), ("record", index, data)
    doc: str | None


@dataclass
class _Named:
    """One definition of a named type (a record or an enum); definitions alike in every schema are one."""

    fullname: str
    kind: str  # "record" or "enum"
    doc: str | None
    first_schema: str  # the generated schema that first defines it
    symbols: tuple[str, ...] = ()
    fields: tuple[_Field, ...] = ()
    pyname: str = ""

    @property
    def short(self) -> str:
        return self.fullname.rpartition(".")[2]

    @property
    def namespace(self) -> str:
        return self.fullname.rpartition(".")[0]


@dataclass
class _Catalogue:
    """Every named type of the generated schemas, in the order first met (a record after what it holds)."""

    named: list[_Named] = field(default_factory=list)
    by_key: dict[str, int] = field(default_factory=dict)
    top: dict[str, int] = field(default_factory=dict)  # schema name -> its record
    # schema name -> record full name -> record
    records: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, named: _Named, key: str) -> int:
        if key not in self.by_key:
            self.by_key[key] = len(self.named)
            self.named.append(named)
        return self.by_key[key]


def generated_schemas() -> dict[str, RecordSchema]:
    """The schemas `schemas/events.py` holds classes of, by name: every event type, then the notification."""
    schemas = {name: event_schemas()[name] for name in sorted(event_schemas())}
    notification = notification_schema()
    schemas[notification.name] = notification
    return schemas


def schema_digest(schema: RecordSchema) -> str:
    """SHA-256 of the self-contained definition, docs and defaults included (a fingerprint leaves them out)."""
    text = json.dumps(schema.definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stale_schemas(digests: Mapping[str, str]) -> list[str]:
    """The schemas whose generated classes (`digests`, as `schemas/events.py` records them) are not of the
    current definition: changed, added or removed since the generator last ran."""
    current = {name: schema_digest(schema) for name, schema in generated_schemas().items()}
    return sorted(name for name in current.keys() | digests.keys() if current.get(name) != digests.get(name))


class _Walker:
    """Walks one self-contained schema as model_for_schema does, a named type defined at its first use."""

    def __init__(self, catalogue: _Catalogue, schema_name: str) -> None:
        self.catalogue = catalogue
        self.schema_name = schema_name
        self.scope: dict[str, int] = {}  # full name -> definition, for the names defined so far
        self.records: dict[str, int] = {}

    def type_of(self, schema: Any, where: str) -> PyType:
        if isinstance(schema, str):
            if schema == "null":
                return ("none",)
            if schema in _PRIMITIVES:
                return ("py", _PRIMITIVES[schema])
            if schema not in self.scope:
                raise UnsupportedSchema(
                    f"{where}: {schema} is not defined before it is used (or is recursive)"
                )
            return ("named", self.scope[schema])
        if isinstance(schema, list):
            return ("union", tuple(self.type_of(branch, where) for branch in schema))
        kind = schema["type"]
        logical = _LOGICAL.get((schema.get("logicalType"), kind)) if isinstance(kind, str) else None
        if logical is not None:
            return ("py", logical)
        if kind == "record":
            return ("named", self.record(schema))
        if kind == "enum":
            return ("named", self.enum(schema))
        if kind == "array":
            return ("list", self.type_of(schema["items"], where))
        if kind == "map":
            return ("dict", self.type_of(schema["values"], where))
        if kind == "fixed":
            raise UnsupportedSchema(f"{where}: fixed ({schema['name']}) has no model type")
        return self.type_of(kind, where)

    def record(self, schema: dict[str, Any]) -> int:
        fullname: str = schema["name"]
        fields = []
        for avro_field in schema["fields"]:
            where = f"{self.schema_name}: {fullname}.{avro_field['name']}"
            if not avro_field["name"].isidentifier() or keyword.iskeyword(avro_field["name"]):
                raise UnsupportedSchema(f"{where}: the field name is not a Python name")
            py_type = self.type_of(avro_field["type"], where)
            fields.append(
                _Field(
                    avro_field["name"],
                    py_type,
                    self.default(avro_field, py_type, where),
                    avro_field.get("doc"),
                )
            )
        named = _Named(fullname, "record", schema.get("doc"), self.schema_name, fields=tuple(fields))
        key = repr(("record", fullname, named.doc, [(f.name, f.type, f.default, f.doc) for f in fields]))
        index = self.catalogue.add(named, key)
        self.scope[fullname] = self.records[fullname] = index
        return index

    def enum(self, schema: dict[str, Any]) -> int:
        fullname: str = schema["name"]
        named = _Named(
            fullname, "enum", schema.get("doc"), self.schema_name, symbols=tuple(schema["symbols"])
        )
        index = self.catalogue.add(named, repr(("enum", fullname, named.doc, named.symbols)))
        self.scope[fullname] = index
        return index

    def default(self, avro_field: dict[str, Any], py_type: PyType, where: str) -> tuple[Any, ...]:
        """The field's default as model_for_schema makes it; UnsupportedSchema where it would make a wrong one."""
        if "default" not in avro_field:
            return ("required",)
        value = avro_field["default"]
        if (
            isinstance(value, dict)
            and py_type[0] == "named"
            and self.catalogue.named[py_type[1]].kind == "record"
        ):
            return ("record", py_type[1], value)
        branches = py_type[1] if py_type[0] == "union" else (py_type,)
        if isinstance(value, (list, dict)):
            container = "list" if isinstance(value, list) else "dict"
            if value:
                raise UnsupportedSchema(
                    f"{where}: a non-empty {container} default (the models would hold it empty)"
                )
            if not any(branch[0] == container for branch in branches):
                raise UnsupportedSchema(f"{where}: an empty {container} default for another type")
            return (container,)
        suits = any(
            (value is None and branch == ("none",))
            or (branch[0] == "py" and type(value) in _SCALAR_DEFAULTS.get(branch[1], ()))
            or (
                branch[0] == "named"
                and self.catalogue.named[branch[1]].kind == "enum"
                and value in self.catalogue.named[branch[1]].symbols
            )
            for branch in branches
        )
        if not suits:
            raise UnsupportedSchema(f"{where}: the default is not a value of the field's Python type")
        return ("value", value)


def catalogue(schemas: Mapping[str, RecordSchema]) -> _Catalogue:
    """Every named type in `schemas`, each given its Python name."""
    result = _Catalogue()
    for name, schema in schemas.items():
        walker = _Walker(result, name)
        result.top[name] = walker.record(schema.definition)
        result.records[name] = walker.records
    _give_names(result)
    return result


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_"))


def _give_names(catalogue: _Catalogue) -> None:
    taken = set(_RESERVED)
    for name, index in catalogue.top.items():
        if name in taken:
            raise UnsupportedSchema(f"{name}: the class cannot be named {name} (a Python or module name)")
        catalogue.named[index].pyname = name
        taken.add(name)
    groups: dict[str, list[_Named]] = {}
    for named in catalogue.named:
        groups.setdefault(named.short, []).append(named)
    for short, group in groups.items():
        rest = [named for named in group if not named.pyname]
        if not rest:
            continue
        if len(group) == 1 and short not in taken:
            rest[0].pyname = short
            taken.add(short)
            continue
        by_namespace = [_camel(named.namespace.rpartition(".")[2]) + short for named in rest]
        for named, candidate in zip(rest, by_namespace, strict=True):
            if by_namespace.count(candidate) > 1 or candidate in taken:
                candidate = named.first_schema + short
            base, number = candidate, 2
            while candidate in taken:
                candidate, number = f"{base}{number}", number + 1
            named.pyname = candidate
            taken.add(candidate)


class _Writer:
    """The source text of the module, before `ruff format`."""

    def __init__(self, catalogue: _Catalogue, schemas: Mapping[str, RecordSchema]) -> None:
        self.catalogue = catalogue
        self.schemas = schemas
        self.used: set[str] = set()  # imported names the code uses

    def annotation(self, py_type: PyType, names: set[str]) -> str:
        """The type as model_for_schema makes it, and the names it refers to into `names`."""
        match py_type:
            case ("none",):
                return "None"
            case ("py", name):
                if name in _MODULE_NAMES:
                    self.used.add(name)
                names.add(name)
                return str(name)
            case ("named", index):
                pyname = self.catalogue.named[index].pyname
                names.add(pyname)
                return pyname
            case ("list", items):
                return f"list[{self.annotation(items, names)}]"
            case ("dict", values):
                return f"dict[str, {self.annotation(values, names)}]"
            case ("union", branches):
                # The builder folds a union left to right with `|`, a leading null coming second (None | X
                # cannot be written at run time); equal branches are one.
                ordered = list(branches)
                if len(ordered) > 1 and ordered[0] == ("none",):
                    ordered[0], ordered[1] = ordered[1], ordered[0]
                texts = [self.annotation(branch, names) for branch in ordered]
                return " | ".join(dict.fromkeys(texts))
        raise AssertionError(py_type)

    def default(self, default: tuple[Any, ...], names: set[str]) -> str | None:
        match default:
            case ("required",):
                return None
            case ("value", value):
                return repr(value)
            case ("list",) | ("dict",):
                self.used.add("Field")
                return f"Field(default_factory={default[0]})"
            case ("record", index, data):
                self.used.add("Field")
                pyname = self.catalogue.named[index].pyname
                names.add(pyname)
                # model_for_schema builds the record's model from the default's values, as here.
                return f"Field(default_factory=lambda: {pyname}.model_validate({data!r}))"
        raise AssertionError(default)

    def enum(self, named: _Named) -> list[str]:
        self.used.update({"Literal", "TypeAlias"})
        symbols = ", ".join(repr(symbol) for symbol in named.symbols)
        return [
            *_comment(f"{named.fullname}{': ' + named.doc if named.doc else ''}", ""),
            f"{named.pyname}: TypeAlias = Literal[{symbols}]",
        ]

    def record(self, named: _Named) -> list[str]:
        lines = [*_comment(named.fullname, ""), f"class {named.pyname}(AvroRecord):"]
        if named.doc is not None:
            lines += [f"    {_docstring(named.doc)}", ""]
        bound: set[str] = set()  # names the class body has bound, which later fields would see
        for avro_field in named.fields:
            names: set[str] = set()
            annotation = self.annotation(avro_field.type, names)
            default = self.default(avro_field.default, names)
            if names & bound:
                raise UnsupportedSchema(
                    f"{named.fullname}.{avro_field.name}: its type names an earlier field, {sorted(names & bound)}"
                )
            if avro_field.doc:
                lines += _comment(avro_field.doc, "    ")
            if default is None:
                lines.append(f"    {avro_field.name}: {annotation}")
            else:
                lines.append(f"    {avro_field.name}: {annotation} = {default}")
                bound.add(avro_field.name)
        if not named.fields:
            lines.append("    pass")
        return lines

    def module(self) -> str:
        enums = sorted((n for n in self.catalogue.named if n.kind == "enum"), key=lambda n: n.pyname)
        records = [n for n in self.catalogue.named if n.kind == "record"]
        body: list[str] = []
        for named in enums:
            body += ["", *self.enum(named)]
        for named in records:
            body += ["", "", *self.record(named)]
        events = [name for name, schema in self.schemas.items() if schema.folder not in _NOT_EVENTS]
        body += [
            "",
            "",
            "# Any agency event.",
            f"Event: TypeAlias = {' | '.join(events)}",
            "",
            "# The class of each event type.",
            "EVENTS: Final[Mapping[str, type[AvroRecord]]] = {",
            *(f"    {name!r}: {name}," for name in events),
            "}",
            "",
            "# The classes of each generated schema's records, by Avro full name (the schema's own included).",
            "RECORDS: Final[Mapping[str, Mapping[str, type[AvroRecord]]]] = {",
        ]
        for name, records_of in self.catalogue.records.items():
            body.append(f"    {name!r}: {{")
            body += [
                f"        {full!r}: {self.catalogue.named[i].pyname},"
                for full, i in sorted(records_of.items())
            ]
            body.append("    },")
        body += [
            "}",
            "",
            "# The definitions these classes were generated from (`schema_digest`), checked on import of schemas.models.",
            "SCHEMA_DIGESTS: Final[Mapping[str, str]] = {",
            *(f"    {name!r}: {schema_digest(schema)!r}," for name, schema in self.schemas.items()),
            "}",
        ]
        self.used.update({"TypeAlias", "Final", "Mapping"})
        return "\n".join([*_HEADER, *self.imports(), *body]) + "\n"

    def imports(self) -> list[str]:
        used = self.used
        lines = ["from collections.abc import Mapping"]
        if "date" in used:
            lines.append("from datetime import date")
        lines.append(
            f"from typing import {', '.join(n for n in ('Final', 'Literal', 'TypeAlias') if n in used)}"
        )
        if "UUID" in used:
            lines.append("from uuid import UUID")
        lines.append("")
        pydantic = [n for n in ("AwareDatetime", "Field") if n in used]
        if pydantic:
            lines += [f"from pydantic import {', '.join(pydantic)}", ""]
        lines.append("from schemas import AvroRecord")
        return lines


_HEADER = [
    f"# Generated by `{COMMAND}` from the .avsc files under schemas/: do not edit.",
    f"# After adding or changing a schema, regenerate it: `.venv/bin/{COMMAND}`.",
    "# tests/unit/test_generated_events.py fails while this file differs from what the generator writes.",
    '"""The hub\'s Avro records as pydantic classes, for code to name: `def f(event: SentenceImposed)`.',
    "",
    "One class per event type (`EVENTS`, or any of them: `Event`), the notification (`VictimNotification`), one",
    "class per named record inside them and a Literal alias per enum; `schemas.models` serves these classes.",
    '"""',
    "",
]


def _comment(text: str, indent: str) -> list[str]:
    width = LINE_LENGTH - len(indent) - 2
    lines = textwrap.wrap(text, width, break_long_words=False)
    return [f"{indent}# {line}" for line in lines] or [f"{indent}#"]


def _docstring(doc: str) -> str:
    """A docstring that reads back as `doc` exactly, through `ruff format` too."""
    plain = bool(doc) and doc == doc.strip() and "\n" not in doc and "\\" not in doc and '"' not in doc
    return f'"""{doc}"""' if plain else repr(doc)


def render(schemas: Mapping[str, RecordSchema] | None = None) -> str:
    """The text of `schemas/events.py` for the current schemas (or `schemas`), formatted as `ruff format` does."""
    schemas = generated_schemas() if schemas is None else schemas
    return _formatted(_Writer(catalogue(schemas), schemas).module())


def _formatted(source: str) -> str:
    command = [sys.executable, "-m", "ruff", "format", "--isolated", f"--line-length={LINE_LENGTH}"]
    command += ["--target-version=py311", "--stdin-filename", str(EVENTS_PATH), "-"]
    result = subprocess.run(command, input=source, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ruff format failed on the generated module: {result.stderr.strip()}")
    return result.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only say whether schemas/events.py is up to date"
    )
    args = parser.parse_args(argv)
    text = render()
    current = EVENTS_PATH.read_text(encoding="utf-8") if EVENTS_PATH.exists() else None
    if text == current:
        print(f"{_shown(EVENTS_PATH)} is up to date")
        return 0
    if args.check:
        print(f"{_shown(EVENTS_PATH)} is out of date: run {COMMAND}", file=sys.stderr)
        return 1
    EVENTS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {_shown(EVENTS_PATH)}")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
