"""The records that move between the stream engine and the pipeline, free of any framework's types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class InboundMessage:
    """One message as consumed from an agency topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class OutboundRecord:
    """One message the worker must write before it acknowledges the batch it came from."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


def dead_letter(
    message: InboundMessage, topic: str, stage: str, error: BaseException | str, attempts: int = 1
):
    """The original key, value and headers untouched, plus headers that say what failed where (DESIGN.md)."""
    now = datetime.now(UTC).isoformat().encode()
    error_class = type(error).__name__ if isinstance(error, BaseException) else "Rejected"
    added: Headers = [
        ("hub.original.topic", message.topic.encode()),
        ("hub.original.partition", str(message.partition).encode()),
        ("hub.original.offset", str(message.offset).encode()),
        ("hub.original.timestamp", str(message.timestamp_ms or "").encode()),
        ("hub.error.stage", stage.encode()),
        ("hub.error.class", error_class.encode()),
        ("hub.error.message", str(error)[:1000].encode()),
        ("hub.attempts", str(attempts).encode()),
        ("hub.first_failure_at", now),
        ("hub.last_failure_at", now),
    ]
    return OutboundRecord(
        topic=topic, key=message.key, value=message.value, headers=[*message.headers, *added]
    )
