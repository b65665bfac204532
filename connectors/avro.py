"""Avro on the wire: single-object framing by default, Confluent framing when a registry is configured.

Single-object encoding is `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
canonical form, then the Avro binary body; the decoder looks the fingerprint up among the writer schemas it
knows. Confluent framing is the magic byte `00`, the writer schema's 4-byte big-endian registry id, then the
body; the decoder asks the registry for that schema. Either way the body is read into the hub's own (reader)
schema of the same full name, so an agency on an older or newer compatible version is read correctly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from connectors.avro_diagnosis import locate_problem
from schemas import RecordSchema, load_schemas

SINGLE_OBJECT_MARKER = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LENGTH = 10
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LENGTH = 5

# fastavro's message for an enum symbol the reader lacks starts with the symbol itself: a value.
_MISSING_ENUM_SYMBOL = re.compile(r"not found in reader symbol list (?P<enum>[\w.]+)")
_LONGEST_RESOLUTION_DETAIL = 300  # some messages hold whole schemas; enough to name the types involved


class UndecodableMessage(ValueError):
    """Bytes that can never be read as one of the hub's records. The message says why, not what they held."""


class WriterSchemas(Protocol):
    """Where a Confluent-framed message's writer schema is found by its id: the schema registry
    (connectors/registry.py), which depends on this module, not the other way round."""

    def writer_schema(self, schema_id: int) -> RecordSchema: ...


@dataclass(frozen=True)
class Decoded:
    schema: RecordSchema  # the hub's reader schema
    record: dict[str, Any]
    # Read from another writer's schema (an older version): the record then has the reader's fields, but in
    # the writer's order, with the fields only the reader has last.
    resolved: bool = False


def hub_codec(registry: WriterSchemas | None = None) -> AvroCodec:
    """The codec for every schema the hub knows, reading the released older versions too.

    With a registry it also reads Confluent-framed messages, whatever version of a known schema wrote them.
    """
    from schemas.compatibility import older_writers

    return AvroCodec(load_schemas().values(), older_writers(), registry=registry)


class AvroCodec:
    """Encodes records with the hub's schemas; decodes any known writer version into them."""

    def __init__(
        self,
        reader_schemas: Iterable[RecordSchema],
        older_writers: Iterable[RecordSchema] = (),
        registry: WriterSchemas | None = None,
    ) -> None:
        self._readers = {schema.fullname: schema for schema in reader_schemas}
        self._writers = {schema.fingerprint: schema for schema in (*older_writers, *self._readers.values())}
        self._registry = registry
        self._ready: dict[bytes, dict[str, Any]] = {}

    def _prepared(self, schema: RecordSchema) -> dict[str, Any]:
        """fastavro's form of `schema` marked as parsed, so reading or writing a message does not parse the
        schema again (without the mark fastavro re-parses it on every call: two thirds of the cost).

        Keyed by fingerprint: schemas with the same canonical form read and write the same bytes."""
        ready = self._ready.get(schema.fingerprint)
        if ready is None:
            # A record's definition parses to a dict (fastavro's return type also covers names and unions).
            ready = self._ready[schema.fingerprint] = cast("dict[str, Any]", parse_schema(schema.definition))
        return ready

    def encode(self, schema: RecordSchema, record: dict[str, Any]) -> bytes:
        """Single-object encoding."""
        return self._encode(SINGLE_OBJECT_MARKER + schema.fingerprint, schema, record)

    def encode_confluent(self, schema: RecordSchema, record: dict[str, Any], schema_id: int) -> bytes:
        """Confluent framing, with the id the registry gave `schema`."""
        return self._encode(CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"), schema, record)

    def decode(self, payload: bytes) -> Decoded:
        """The record in the hub's schema. Raises UndecodableMessage, or RegistryUnavailable (transient)."""
        if payload[:1] == CONFLUENT_MAGIC:
            return self._decode_confluent(payload)
        return self._decode_single_object(payload)

    def _decode_single_object(self, payload: bytes) -> Decoded:
        if len(payload) < SINGLE_OBJECT_HEADER_LENGTH:
            raise UndecodableMessage("payload is shorter than the single-object header")
        if payload[:2] != SINGLE_OBJECT_MARKER:
            raise UndecodableMessage("payload does not start with the single-object marker C3 01")
        fingerprint = payload[2:SINGLE_OBJECT_HEADER_LENGTH]
        writer = self._writers.get(fingerprint)
        if writer is None:
            raise UndecodableMessage(f"unknown writer schema fingerprint {fingerprint.hex()}")
        return self._read(payload, SINGLE_OBJECT_HEADER_LENGTH, writer)

    def _decode_confluent(self, payload: bytes) -> Decoded:
        if len(payload) < CONFLUENT_HEADER_LENGTH:
            raise UndecodableMessage("payload is shorter than the Confluent header")
        if self._registry is None:
            # "marker" too: without a registry the hub expects single-object framing only
            raise UndecodableMessage(
                "Confluent-framed message but no schema registry is configured "
                "(expected the single-object marker C3 01)"
            )
        writer = self._registry.writer_schema(int.from_bytes(payload[1:CONFLUENT_HEADER_LENGTH], "big"))
        # A registered copy of a schema the hub knows is read with the hub's own object (no resolution step).
        writer = self._writers.get(writer.fingerprint, writer)
        return self._read(payload, CONFLUENT_HEADER_LENGTH, writer)

    def _read(self, payload: bytes, offset: int, writer: RecordSchema) -> Decoded:
        reader = self._readers.get(writer.fullname)
        if reader is None:
            raise UndecodableMessage(f"no reader schema for {writer.fullname}")
        return Decoded(reader, self._read_body(payload, offset, writer, reader), writer is not reader)

    def _encode(self, header: bytes, schema: RecordSchema, record: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        body.write(header)
        schemaless_writer(body, self._prepared(schema), record)
        return body.getvalue()

    def _read_body(
        self, payload: bytes, offset: int, writer: RecordSchema, reader: RecordSchema
    ) -> dict[str, Any]:
        body = io.BytesIO(payload)
        body.seek(offset)
        try:
            # Both schemas are records, so what fastavro reads is a record's dict.
            if writer is reader:
                record = cast("dict[str, Any]", schemaless_reader(body, self._prepared(writer), None))
            else:
                record = cast(
                    "dict[str, Any]", schemaless_reader(body, self._prepared(writer), self._prepared(reader))
                )
        except SchemaResolutionError as error:
            raise UndecodableMessage(
                f"{writer.name}: the writer's schema cannot be read into the hub's: {_resolution_detail(error)}"
            ) from None
        except Exception as error:
            # fastavro says only that the body is corrupt, through several exception types; find the field.
            where = locate_problem(payload, offset, writer.definition)
            detail = where or f"body is truncated or corrupt ({type(error).__name__})"
            raise UndecodableMessage(f"{writer.name}: {detail}") from None
        if body.tell() != len(payload):
            raise UndecodableMessage(
                f"{writer.name}: {len(payload) - body.tell()} unexpected bytes after the record"
            )
        return record


def _resolution_detail(error: SchemaResolutionError) -> str:
    """fastavro's reason, which names the field or the types involved, without any value from the record."""
    message = str(error)
    if enum := _MISSING_ENUM_SYMBOL.search(message):
        return f"the writer used a symbol that enum {enum['enum']} does not have, and it has no default"
    if len(message) > _LONGEST_RESOLUTION_DETAIL:
        return message[:_LONGEST_RESOLUTION_DETAIL] + "…"
    return message
