"""The agency publisher: turns an agency's event (JSON-shaped) into a validated, Avro-encoded message.

Agencies write events flat (docs/domain.md section 2.2): `{"event_type": "PrisonerReleased",
"noms_number": "A1234BC", "release_type": "automatic", ...}`. The publisher moves envelope fields and
identifiers into their shared records, fills what is missing (event id, times, source), validates, encodes
and publishes, and reports a result per event.

Every record is signed with the publishing agency's key (connectors/signatures.py): the hub dead-letters a
record it cannot prove came from the agency whose topic it is on.

Encoding is single-object by default. Given a schema registry URL, the publisher registers each event's
schema under the topic's subject (`<topic>-value`) and uses Confluent framing instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from connectors.avro import AvroCodec, hub_codec
from connectors.registry import SchemaRegistry, value_subject
from connectors.signatures import RecordSigner
from schemas import event_schemas, identifier_kinds
from schemas.models import AvroRecord
from schemas.validation import InvalidEvent, Problem, check_event, parse_event, schema_for

ENVELOPE_FIELDS = ("event_id", "event_type", "occurred_at", "published_at", "source")
IDENTIFIER_FIELDS = identifier_kinds()
SOURCE_FIELDS = ("system", "establishment")
DEFAULT_SYSTEM = "hub publish"


def event_from_json(data: dict[str, Any], source: str, now: datetime, *, validate: bool = True) -> AvroRecord:
    """Build and validate one event from an agency's JSON object; InvalidEvent names every wrong field.

    `validate=False` skips the rules beyond the schema (identifier formats, dates, required identifiers), so
    that `hub simulate` can send the broken events a real agency sometimes does."""
    if not isinstance(data, dict):
        raise InvalidEvent([Problem("", "each line must be a JSON object")])
    event_type = data.get("event_type") or (data.get("envelope") or {}).get("event_type")
    if not isinstance(event_type, str):
        raise InvalidEvent([Problem("event_type", "is required")])
    schema = schema_for(event_type)
    event_fields = {field["name"] for field in schema.definition["fields"]}
    fields = dict(data)
    envelope = dict(fields.pop("envelope", None) or {})
    subject = dict(envelope.pop("subject", None) or fields.pop("subject", None) or {})
    for name in ENVELOPE_FIELDS:
        if name in fields and name not in event_fields:
            envelope[name] = fields.pop(name)
    for name in IDENTIFIER_FIELDS:
        if name in fields and name not in event_fields:
            subject[name] = fields.pop(name)
    if isinstance(envelope.get("source"), str):
        envelope["source"] = {"agency": envelope["source"], "system": DEFAULT_SYSTEM}
    envelope.setdefault("source", {"agency": source, "system": DEFAULT_SYSTEM})
    for name in SOURCE_FIELDS:  # the publishing system and establishment may be written flat too
        if name in fields and name not in event_fields:
            envelope["source"][name] = fields.pop(name)
    envelope["source"].setdefault("system", DEFAULT_SYSTEM)
    envelope.setdefault("event_id", str(uuid.uuid4()))
    envelope.setdefault("occurred_at", now)
    envelope.setdefault("published_at", now)
    envelope["event_type"] = event_type
    envelope["subject"] = subject
    event = parse_event(event_type, {"envelope": envelope, **fields})
    if validate:
        check_event(event, channel=source, today=now.date())
    return event


def message_key(event: AvroRecord) -> bytes | None:
    """Keyed by the first identifier present, so one offender's events from one agency stay in order."""
    subject = event.envelope.subject
    for name in ("case_ref", "noms_number", "crn", "patient_ref", "pb_case_ref", "ho_ref", "pnc", "cro"):
        if (value := getattr(subject, name)) is not None:
            return str(value).encode()
    return None


@dataclass(frozen=True)
class PublishResult:
    event_id: str
    event_type: str
    partition: int
    offset: int


class AgencyPublisher:
    """Publishes validated, signed events to agencies' inbound topics: each event is signed with the key of the
    agency its envelope names (`signers`, by agency; an agency's own publisher holds just its own)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        signers: Mapping[str, RecordSigner],
        codec: AvroCodec | None = None,
        registry_url: str = "",
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`client_options`: the broker connection's security keyword arguments (security_protocol, sasl_*,
        ssl_context, as aiokafka names them); none means plaintext."""
        self.signers = dict(signers)
        self.codec = codec or hub_codec()
        self.registry = SchemaRegistry(registry_url) if registry_url else None
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, **(client_options or {})
        )

    async def __aenter__(self) -> AgencyPublisher:
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    def encode(self, event: AvroRecord, topic: str = "") -> bytes:
        """The message value. With a registry, `topic` names the subject; registering blocks on first use."""
        schema = event_schemas()[type(event).__name__]
        if self.registry is None:
            return self.codec.encode(schema, event.model_dump())
        if not topic:
            raise ValueError(
                "a topic is needed to encode for a schema registry (its subject is <topic>-value)"
            )
        schema_id = self.registry.register(value_subject(topic), schema)
        return self.codec.encode_confluent(schema, event.model_dump(), schema_id)

    async def publish(self, topic: str, events: Iterable[AvroRecord]) -> list[PublishResult]:
        events = list(events)
        if self.registry is not None:
            # Registering is blocking HTTP (once per schema and topic), so it runs off the event loop; `encode`
            # then finds the ids cached.
            for name in {type(event).__name__ for event in events}:
                await asyncio.to_thread(self.registry.register, value_subject(topic), event_schemas()[name])
        pending = []
        for event in events:
            value, key = self.encode(event, topic), message_key(event)
            headers = self.signer(event.envelope.source.agency).headers(topic, key, value)
            pending.append((event, await self._producer.send(topic, value, key=key, headers=headers)))
        results = []
        for event, future in pending:
            metadata = await future
            results.append(
                PublishResult(
                    str(event.envelope.event_id),
                    event.envelope.event_type,
                    metadata.partition,
                    metadata.offset,
                )
            )
        return results

    def signer(self, agency: str) -> RecordSigner:
        try:
            return self.signers[agency]
        except KeyError:
            raise LookupError(f"no signing key for agency {agency} in this publisher") from None

    async def publish_raw(
        self, topic: str, value: bytes, key: bytes | None = None, *, signed_by: str | None = None
    ) -> None:
        """Publish bytes as they are, signed by agency `signed_by` (None: unsigned): for tests and tools that need
        to send what an agency got wrong, or what an impostor would."""
        headers = self.signer(signed_by).headers(topic, key, value) if signed_by else []
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)
