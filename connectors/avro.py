"""Avro on the wire: single-object framing by default, Confluent framing when a registry is configured.

Single-object encoding is `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
canonical form, then the Avro binary body. The decoder looks the fingerprint up among the writer schemas it
knows and reads the body into the hub's own (reader) schema of the same name, so an agency on an older or
newer compatible version is read correctly.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas import RecordSchema, load_schemas

SINGLE_OBJECT_MARKER = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LENGTH = 10


class UndecodableMessage(ValueError):
    """Bytes that can never be read as one of the hub's records. The message says why, not what they held."""


@dataclass(frozen=True)
class Decoded:
    schema: RecordSchema  # the hub's reader schema
    record: dict[str, Any]


def hub_codec() -> AvroCodec:
    """The codec for every schema the hub knows, reading the released older versions too."""
    from schemas.compatibility import older_writers

    return AvroCodec(load_schemas().values(), older_writers())


class AvroCodec:
    """Encodes records with the hub's schemas; decodes any known writer version into them."""

    def __init__(
        self, reader_schemas: Iterable[RecordSchema], older_writers: Iterable[RecordSchema] = ()
    ) -> None:
        self._readers = {schema.fullname: schema for schema in reader_schemas}
        self._writers = {schema.fingerprint: schema for schema in (*older_writers, *self._readers.values())}

    def encode(self, schema: RecordSchema, record: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        body.write(SINGLE_OBJECT_MARKER)
        body.write(schema.fingerprint)
        schemaless_writer(body, schema.parsed, record)
        return body.getvalue()

    def decode(self, payload: bytes) -> Decoded:
        if len(payload) < SINGLE_OBJECT_HEADER_LENGTH:
            raise UndecodableMessage("payload is shorter than the single-object header")
        if payload[:2] != SINGLE_OBJECT_MARKER:
            raise UndecodableMessage("payload does not start with the single-object marker C3 01")
        writer = self._writers.get(payload[2:SINGLE_OBJECT_HEADER_LENGTH])
        if writer is None:
            raise UndecodableMessage(
                f"unknown writer schema fingerprint {payload[2:SINGLE_OBJECT_HEADER_LENGTH].hex()}"
            )
        reader = self._readers.get(writer.fullname)
        if reader is None:
            raise UndecodableMessage(f"no reader schema for {writer.fullname}")
        return Decoded(reader, self._read_body(payload, SINGLE_OBJECT_HEADER_LENGTH, writer, reader))

    @staticmethod
    def _read_body(payload: bytes, offset: int, writer: RecordSchema, reader: RecordSchema) -> dict[str, Any]:
        body = io.BytesIO(payload)
        body.seek(offset)
        try:
            if writer is reader:
                record = schemaless_reader(body, writer.parsed, None)
            else:
                record = schemaless_reader(body, writer.parsed, reader.parsed)
        except UnicodeDecodeError:
            raise UndecodableMessage(f"{writer.name}: a string field is not valid UTF-8") from None
        except (EOFError, StopIteration, IndexError, ValueError, TypeError, OverflowError) as error:
            # fastavro reports a truncated or corrupt body through several exception types
            raise UndecodableMessage(
                f"{writer.name}: body is truncated or corrupt ({type(error).__name__})"
            ) from None
        except Exception as error:
            raise UndecodableMessage(f"{writer.name}: cannot read body ({type(error).__name__})") from None
        if body.tell() != len(payload):
            raise UndecodableMessage(
                f"{writer.name}: {len(payload) - body.tell()} unexpected bytes after the record"
            )
        return record
