"""Where an Avro body goes wrong: a slow, plain reader used only after the fast reader (fastavro) failed.

fastavro says that a body is corrupt, not where. An agency integrator needs the field: this walks the
writer schema through the body and names the first field that cannot be read (truncated, not UTF-8, an enum
or union index out of range, a negative length). It never reports the value it found.
"""

from __future__ import annotations

import struct
from typing import Any


class _Broken(Exception):
    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem


class _Reader:
    def __init__(self, body: bytes, offset: int) -> None:
        self.body = body
        self.position = offset
        self.named: dict[str, Any] = {}

    def take(self, count: int, path: str) -> bytes:
        if count < 0:
            raise _Broken(path, "has a negative length")
        if self.position + count > len(self.body):
            raise _Broken(path, "is cut short: the body is truncated or corrupt")
        chunk = self.body[self.position : self.position + count]
        self.position += count
        return chunk

    def long(self, path: str) -> int:
        shift = result = 0
        while True:
            byte = self.take(1, path)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise _Broken(path, "holds a number too long for Avro")

    def value(self, schema: Any, path: str) -> None:
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], path)
            return self.primitive(schema, path)
        if isinstance(schema, list):
            index = self.long(path)
            if not 0 <= index < len(schema):
                raise _Broken(path, f"has union branch {index}, but the schema has {len(schema)} branches")
            return self.value(schema[index], path)
        kind = schema["type"]
        if kind == "record":
            self.named[schema["name"]] = schema
            for field in schema["fields"]:
                self.value(field["type"], f"{path}.{field['name']}" if path else field["name"])
        elif kind == "enum":
            self.named[schema["name"]] = schema
            index = self.long(path)
            if not 0 <= index < len(schema["symbols"]):
                raise _Broken(
                    path, f"has enum index {index}, but {schema['name']} has {len(schema['symbols'])} symbols"
                )
        elif kind == "fixed":
            self.named[schema["name"]] = schema
            self.take(schema["size"], path)
        elif kind in ("array", "map"):
            self.blocks(schema, path)
        else:
            self.primitive(kind, path)

    def blocks(self, schema: Any, path: str) -> None:
        index = 0
        while (count := self.long(path)) != 0:
            if count < 0:  # a negative count is followed by the block's size in bytes
                count = -count
                self.long(path)
            for _ in range(count):
                if schema["type"] == "map":
                    self.primitive("string", f"{path}.<key>")
                    self.value(schema["values"], f"{path}.<value>")
                else:
                    self.value(schema["items"], f"{path}.{index}")
                index += 1

    def primitive(self, kind: str, path: str) -> None:
        match kind:
            case "null":
                return
            case "boolean":
                if self.take(1, path)[0] > 1:
                    raise _Broken(path, "is not a boolean")
            case "int" | "long":
                self.long(path)
            case "float":
                struct.unpack("<f", self.take(4, path))
            case "double":
                struct.unpack("<d", self.take(8, path))
            case "bytes":
                self.take(self.long(path), path)
            case "string":
                try:
                    self.take(self.long(path), path).decode("utf-8")
                except UnicodeDecodeError:
                    raise _Broken(path, "is not valid UTF-8") from None
            case _:
                raise _Broken(path, f"has a type this reader does not know ({kind})")


def locate_problem(body: bytes, offset: int, schema: dict[str, Any]) -> str | None:
    """`field.path: problem` for the first field the body cannot hold, or None if it reads cleanly."""
    reader = _Reader(body, offset)
    try:
        reader.value(schema, "")
    except _Broken as broken:
        return f"{broken.path or 'record'}: {broken.problem}"
    return None
