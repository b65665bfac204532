"""The schema registry, for Confluent framing: schema ids for the publisher, writer schemas for the decoder.

A thin wrapper around the synchronous client of `python-schema-registry-client` (the hub decodes inside a
worker thread), with its own cache so each schema id and each subject's schema is asked for once per process.
Subjects follow Confluent's TopicNameStrategy: `<topic>-value`.

Failures are split the way the worker needs them: an id the registry says does not exist, or a schema that
is not an Avro record, is `UndecodableMessage` (a dead letter); anything else (connection refused, timeout,
5xx, 401/403, an error page from a proxy) is `RegistryUnavailable`, which the worker retries: the message is
not at fault, so dead-lettering it would be wrong.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import urlparse

import httpx
from fastavro.schema import SchemaParseException
from schema_registry.client import SchemaRegistryClient
from schema_registry.client.errors import ClientError
from schema_registry.client.schema import AvroSchema

from connectors.avro import UndecodableMessage
from schemas import RecordSchema, build_record_schema

DEFAULT_TIMEOUT_SECONDS = 5.0
# The registry answers these to a register call when the schema itself is at fault: retrying cannot help.
_REFUSED_CODES = {409, 422}


class RegistryUnavailable(Exception):
    """The registry could not be asked or gave no usable answer. Transient: retry later.

    Deliberately not an UndecodableMessage: the message is fine, the registry is not, so it must not be
    dead-lettered.
    """


class SchemaRejected(ValueError):
    """The registry refused to register a schema (incompatible with the subject's versions, or invalid)."""


def value_subject(topic: str) -> str:
    """Confluent's TopicNameStrategy for record values."""
    return f"{topic}-value"


class SchemaRegistry:
    """Schema ids and writer schemas from a Confluent-compatible registry, each fetched once."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        # The client only asserts the scheme (and asserts vanish under -O): say what is wrong instead.
        if urlparse(url).scheme not in ("http", "https"):
            raise ValueError("the schema registry URL must start with http:// or https://")
        self._client = SchemaRegistryClient(url, timeout=httpx.Timeout(timeout))
        self._by_id: dict[int, RecordSchema] = {}
        self._ids: dict[tuple[str, bytes], int] = {}
        # Held only on a cache miss, so concurrent decoders of a new id fetch it once; hits never wait.
        self._lock = threading.Lock()

    def register(self, subject: str, schema: RecordSchema) -> int:
        """The schema's id under `subject`, registering it there if it is new. Blocking (HTTP)."""
        key = (subject, schema.fingerprint)
        if (known := self._ids.get(key)) is not None:
            return known
        with self._lock:
            if (known := self._ids.get(key)) is not None:
                return known
            try:
                schema_id = self._client.register(subject, AvroSchema(schema.definition))
            except ClientError as error:
                if error.http_code in _REFUSED_CODES:
                    raise SchemaRejected(
                        f"the registry refused {schema.fullname} under {subject}: "
                        f"{error.message} (HTTP {error.http_code})"
                    ) from None
                raise _unavailable(f"registering {schema.fullname} under {subject}", error) from error
            except (httpx.HTTPError, json.JSONDecodeError) as error:
                raise _unavailable(f"registering {schema.fullname} under {subject}", error) from error
            self._ids[key] = schema_id
            return schema_id

    def writer_schema(self, schema_id: int) -> RecordSchema:
        """The schema a Confluent-framed message was written with. Blocking (HTTP) on the first call per id."""
        if (known := self._by_id.get(schema_id)) is not None:
            return known
        with self._lock:
            if (known := self._by_id.get(schema_id)) is None:
                known = self._by_id[schema_id] = self._fetch(schema_id)
            return known

    def _fetch(self, schema_id: int) -> RecordSchema:
        try:
            found = self._client.get_by_id(schema_id)  # None when the registry answers 404
        except (httpx.HTTPError, ClientError, json.JSONDecodeError) as error:
            # JSONDecodeError: the client parses every answer as JSON, so a proxy's HTML error page lands here
            raise _unavailable(f"fetching schema id {schema_id}", error) from error
        except (SchemaParseException, ValueError) as error:
            # the registry holds something under this id that is not a schema fastavro can parse
            raise UndecodableMessage(
                f"schema id {schema_id} is not a valid Avro schema ({type(error).__name__})"
            ) from None
        if found is None:
            raise UndecodableMessage(f"unknown schema id {schema_id}")
        definition = found.raw_schema
        if (
            not isinstance(found, AvroSchema)
            or not isinstance(definition, dict)
            or definition.get("type") != "record"
        ):
            raise UndecodableMessage(f"schema id {schema_id} is not an Avro record schema")
        return build_record_schema(definition, folder="registry", shared={})


def registry_for(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> SchemaRegistry | None:
    """The registry for a HUB_SCHEMA_REGISTRY_URL setting; None when it is empty (single-object only)."""
    return SchemaRegistry(url, timeout) if url else None


def _unavailable(doing: str, error: Exception) -> RegistryUnavailable:
    # Never the URL: it may carry credentials.
    detail = (
        f"HTTP {error.http_code}" if isinstance(error, ClientError) else f"{type(error).__name__}: {error}"
    )
    return RegistryUnavailable(f"schema registry unavailable {doing} ({detail})")
