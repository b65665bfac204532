"""Dead-letter operations for operators: list, show (redacted), replay and purge, every one audited.

The dead-letter topic is the record of what failed; the case store keeps the audit of what operators did with
it and which dead letters were purged (Kafka cannot delete single records, so a purge hides them). Each value
on the topic is sealed for the operations key (hub/runtime/protection.py): reading one opens it, so what an operator
shows or replays is the original, byte for byte.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.sealing import Opener, SealedRecordError, is_sealed
from hub.settings import Settings
from hub.store.models import OperatorAction, PurgedDeadLetter

REPLAY_HEADERS = ("hub.replay.of", "hub.replay.at", "hub.replay.by")


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    original_headers: list[tuple[str, bytes]] = field(default_factory=list)
    unreadable: str | None = None  # why the value could not be opened (it is then the sealed bytes)

    @classmethod
    def from_record(cls, record: Any, opener: Opener) -> DeadLetter:
        """From a consumed `hub.dlq` record, opened; the agency's own headers are kept apart for a replay."""
        value, unreadable = record.value or b"", None
        if is_sealed(value):
            try:
                value = opener.open(value)
            except SealedRecordError as error:
                unreadable = str(error)
        return cls(
            record.partition,
            record.offset,
            record.key,
            value,
            dict(record.headers),
            [h for h in record.headers if not h[0].startswith("hub.")],
            unreadable,
        )

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode("utf-8", "replace")

    @property
    def original_topic(self) -> str:
        return self.header("hub.original.topic")

    @property
    def last_failure_at(self) -> datetime | None:
        text = self.header("hub.last_failure_at")
        return datetime.fromisoformat(text) if text else None

    def summary(self, settings: Settings, now: datetime) -> dict[str, object]:
        failed = self.last_failure_at
        return {
            "id": self.id,
            "source": settings.source_of_topic(self.original_topic),
            "original_topic": self.original_topic,
            "stage": self.header("hub.error.stage"),
            "error_class": self.header("hub.error.class"),
            "reason": self.header("hub.error.message"),
            "attempts": self.header("hub.attempts"),
            "failed_at": failed.isoformat() if failed else None,
            "age_seconds": round((now - failed).total_seconds()) if failed else None,
        }


@dataclass(frozen=True)
class DeadLetterFilter:
    source: str | None = None
    stage: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter, settings: Settings) -> bool:
        failed = letter.last_failure_at
        return (
            (self.source is None or settings.source_of_topic(letter.original_topic) == self.source)
            and (self.stage is None or letter.header("hub.error.stage") == self.stage)
            and (self.error_class is None or letter.header("hub.error.class") == self.error_class)
            and (self.since is None or (failed is not None and failed >= self.since))
            and (self.until is None or (failed is not None and failed <= self.until))
        )

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value is not None]
        return " ".join(parts) or "all"


def audit(engine: Engine, actor: str, action: str, target: str, count: int) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            OperatorAction(
                at=datetime.now(UTC), actor=actor, action=action, target=target[:2000], count=count
            )
        )


def purged(engine: Engine) -> set[tuple[int, int]]:
    with Session(engine) as session:
        return {(row.partition, row.offset) for row in session.scalars(select(PurgedDeadLetter))}


async def read_dead_letters(
    bootstrap: str,
    topic: str,
    hidden: set[tuple[int, int]],
    opener: Opener,
    timeout: float = 10.0,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> list[DeadLetter]:
    """Every dead letter not purged, oldest first per partition. `client_options`: the broker connection's
    security (Settings.kafka_client_options); none means plaintext."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(client_options or {})
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if (record.partition, record.offset) in hidden:
                        continue
                    letters.append(DeadLetter.from_record(record, opener))
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str,
    letters: Iterable[DeadLetter],
    actor: str,
    per_second: float,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> int:
    """Republish the original bytes to their original topic, marked as a replay, at most `per_second`. A dead
    letter that could not be opened is not replayed: its bytes are not the original's."""
    letters = list(letters)
    unreadable = [letter.id for letter in letters if letter.unreadable]
    if unreadable:
        raise SealedRecordError(f"dead letters {', '.join(unreadable)} cannot be opened with the keys given")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **(client_options or {}))
    await producer.start()
    sent = 0
    try:
        interval = 1.0 / per_second if per_second > 0 else 0.0
        for letter in letters:
            headers = [
                *letter.original_headers,
                ("hub.replay.of", letter.id.encode()),
                ("hub.replay.at", datetime.now(UTC).isoformat().encode()),
                ("hub.replay.by", actor.encode()),
            ]
            await producer.send_and_wait(letter.original_topic, letter.value, key=letter.key, headers=headers)
            sent += 1
            if interval:
                await asyncio.sleep(interval)
    finally:
        await producer.stop()
    return sent


def purge(engine: Engine, letters: Iterable[DeadLetter]) -> int:
    """Hide these dead letters from every later listing, show and replay."""
    count = 0
    with Session(engine) as session, session.begin():
        for letter in letters:
            if session.get(PurgedDeadLetter, (letter.partition, letter.offset)) is None:
                session.add(
                    PurgedDeadLetter(
                        partition=letter.partition, offset=letter.offset, purged_at=datetime.now(UTC)
                    )
                )
                count += 1
    return count
