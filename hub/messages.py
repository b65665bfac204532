"""The records that move between the stream engine and the pipeline, free of any framework's types."""

from __future__ import annotations

import base64
import logging
import traceback
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
    value: bytes | None  # None: a tombstone, kept as it came
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class OutboundRecord:
    """One message the worker must write before it acknowledges the batch it came from."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    partition: int | None = None  # None: the producer's partitioner decides by key


def operator_safe_reason(error: BaseException, safe_to_show: tuple[type[BaseException], ...]) -> str:
    """A reason operators may read. The hub's own errors name fields and rules, never values; other
    exceptions (a database's, a library's) can quote the data they choked on, so only their type is given."""
    if isinstance(error, safe_to_show):
        return str(error)
    cause = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error
    detail = f" ({type(cause).__name__})" if cause is not None else ""
    return f"{type(error).__name__}{detail} while applying the event; see the worker log"


def log_without_values(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log where an unexpected error came from, without its message (it may quote personal data)."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error("%s: %s\n%s", what, type(error).__name__, frames)


def dead_letter(
    message: InboundMessage,
    topic: str,
    stage: str,
    error_class: str,
    reason: str,
    attempts: int = 1,
    first_failure_at: datetime | None = None,
    history: str | None = None,
) -> OutboundRecord:
    """The original key, value and headers untouched, and headers on what failed where (README, Dead letters).
    A message that went through the retry ladder also carries its attempts and their history."""
    now = datetime.now(UTC).isoformat().encode()
    first = first_failure_at.isoformat().encode() if first_failure_at else now
    added: Headers = [
        ("hub.original.topic", message.topic.encode()),
        ("hub.original.partition", str(message.partition).encode()),
        ("hub.original.offset", str(message.offset).encode()),
        ("hub.original.timestamp", str(message.timestamp_ms or "").encode()),
        ("hub.error.stage", stage.encode()),
        ("hub.error.class", error_class.encode()),
        ("hub.error.message", reason[:1000].encode()),
        ("hub.attempts", str(attempts).encode()),
        ("hub.first_failure_at", first),
        ("hub.last_failure_at", now),
    ]
    if history is not None:
        added.append(("hub.retry.history", history.encode()))
    return OutboundRecord(
        topic=topic, key=message.key, value=message.value, headers=[*message.headers, *added]
    )


def headers_kept(headers: Headers) -> list[list[str]]:
    """Headers as the case store keeps them (JSON): [name, base64 value] pairs, in order."""
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def headers_from_kept(kept: list[list[str]] | None) -> Headers:
    return [(name, base64.b64decode(value)) for name, value in kept or []]
