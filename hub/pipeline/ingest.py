"""Ingest: bytes from an agency topic become a validated event, or a reason it never can."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

from connectors.avro import AvroCodec, UndecodableMessage
from hub.errors import Rejected
from hub.messages import InboundMessage
from schemas.models import AvroRecord
from schemas.validation import InvalidEvent, check_event, event_from_record, parse_event


@dataclass(frozen=True)
class IngestedEvent:
    message: InboundMessage
    event: AvroRecord
    source: str  # the agency whose channel it came on

    @cached_property
    def event_id(self) -> str:
        # Asked many times per event along the pipeline; the UUID's text is made once.
        return str(self.event.envelope.event_id)

    @property
    def event_type(self) -> str:
        event_type: str = self.event.envelope.event_type
        return event_type


# Everything ingest raises for a message that can never succeed: it goes to the dead-letter topic at once.
PERMANENT_FAILURES = (Rejected, UndecodableMessage, InvalidEvent)


def ingest(
    message: InboundMessage, source: str | None, codec: AvroCodec, max_bytes: int, today: date
) -> IngestedEvent:
    if source is None:
        raise Rejected(f"topic {message.topic} is not an agency inbound topic")
    payload = message.value or b""
    if len(payload) > max_bytes:
        raise Rejected(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    decoded = codec.decode(payload)
    if decoded.resolved:
        # An older writer's field order: the full validation puts the fields in the hub's order.
        event = parse_event(decoded.schema.name, decoded.record)
        check_event(event, channel=source, today=today)
    else:
        # fastavro has checked the record against the schema: it becomes the event without a second validation.
        event = event_from_record(decoded.schema.name, decoded.record, channel=source, today=today)
    return IngestedEvent(message=message, event=event, source=source)
