"""What the unit queues and the dead-letter topic owe their readers when the broker has lost its topics (the
embedded Tansu keeps them in memory only, so every restart of `hub up` loses them).

A broker whose unit queues are all empty while the case store holds published notifications has lost them. On
such a broker the worker, before it consumes, puts back every published notification that was not withdrawn,
oldest first, sealed anew, and moves each reader's group to just after the last notification that reader had
read. `hub queue read` keeps that progress in the case store by notification id, not by offset: offsets on the
new topics differ wherever the old ones held a copy sent twice.

Likewise the dead letters: the worker keeps a copy of each one it writes (sealed, as on the topic), and puts
back those not purged on an empty `hub.dlq`. A purge is kept by (partition, offset), which the new topic
reuses for other letters, so purged copies are dropped and the purge list starts again.

The outbound topics (records for other agencies) likewise: when every one is empty, the published records whose
payload the store still keeps go back, oldest first, sealed anew.

And the retry ladder: the worker keeps a copy of each record it writes to a retry topic until that tier has
taken it again (applied it, or sent it on up the ladder, which keeps a new copy), and puts the copies back, each
on its tier and partition, when every retry topic is empty; each then waits out what is left of its delay.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from connectors.queue_reader import NOTIFICATION_ID_HEADER
from hub.messages import OutboundRecord
from hub.pipeline.outbound import RECORD_TYPE_HEADER
from hub.store.models import (
    DeadLetterCopy,
    Notification,
    OutboxRecord,
    PurgedDeadLetter,
    ReaderProgress,
    RetryCopy,
)


@dataclass(frozen=True)
class Restored:
    notifications: int = 0
    readers: int = 0
    dead_letters: int = 0


@dataclass(frozen=True)
class WrittenRecord:
    """A record as it went onto its topic (a dead letter, a retry), and where."""

    record: OutboundRecord
    partition: int
    offset: int


def _headers_kept(record: OutboundRecord) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in record.headers]


def keep_dead_letters(engine: Engine, written: list[WrittenRecord]) -> None:
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for letter in written:
            headers = _headers_kept(letter.record)
            session.add(
                DeadLetterCopy(
                    partition=letter.partition,
                    offset=letter.offset,
                    key=letter.record.key,
                    value=letter.record.value,
                    headers=headers,
                    written_at=now,
                )
            )


def record_progress(engine: Engine, group: str, topic: str, read_up_to: Mapping[int, str]) -> None:
    """A reader has read `topic` up to these notifications (by partition)."""
    if not read_up_to:
        return
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for partition, notification_id in read_up_to.items():
            session.merge(ReaderProgress(reader_group=group, topic=topic, partition=partition,
                                         notification_id=notification_id, at=now))  # fmt: skip


async def _republish(
    bootstrap: str, records: list[OutboundRecord], options: Mapping[str, Any]
) -> list[tuple[str, int, int]]:
    """Write records as they are (already sealed), in order; where each one went: (topic, partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    await producer.start()
    try:
        futures = [
            await producer.send(r.topic, r.value, key=r.key, partition=r.partition, headers=r.headers)
            for r in records
        ]
        written = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(at.topic, at.partition, at.offset) for at in written]


def _kept_record(copy: DeadLetterCopy | RetryCopy, topic: str, partition: int | None) -> OutboundRecord:
    headers = [(name, base64.b64decode(value)) for name, value in copy.headers]
    return OutboundRecord(topic, copy.key, copy.value, headers, partition)


def _published(engine: Engine, topics: set[str]) -> list[OutboundRecord]:
    query = (
        select(Notification.topic, Notification.key, Notification.payload, Notification.notification_id)
        .where(
            Notification.published_at.is_not(None),
            Notification.withdrawn_at.is_(None),
            # Dropped by the retention schedule once past the queues' own retention: the broker had dropped it too.
            Notification.payload.is_not(None),
        )
        .order_by(Notification.published_at, Notification.created_at, Notification.notification_id)
    )
    with Session(engine) as session:
        return [
            OutboundRecord(
                row.topic, row.key, row.payload, [(NOTIFICATION_ID_HEADER, row.notification_id.encode())]
            )
            for row in session.execute(query)
            if row.topic in topics
        ]


def _progress(engine: Engine) -> list[ReaderProgress]:
    with Session(engine) as session:
        return list(session.scalars(select(ReaderProgress)))


async def _queues_are_empty(bootstrap: str, topics: list[str], options: Mapping[str, Any]) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        await consumer.topics()  # partitions_for_topic answers from the metadata this fetches
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    return not any(ends.values())


async def restore_queues(
    bootstrap: str,
    engine: Engine,
    unit_topics: list[str],
    seal: Callable[[list[OutboundRecord]], list[OutboundRecord]],
    options: Mapping[str, Any],
) -> Restored:
    """Put the unit queues and their readers' progress back if the broker has lost them (see the module)."""
    if not await _queues_are_empty(bootstrap, unit_topics, options):
        return Restored()
    records = await asyncio.to_thread(_published, engine, set(unit_topics))
    if not records:
        return Restored()
    written = await _republish(bootstrap, seal(records), options)
    where = {
        dict(record.headers)[NOTIFICATION_ID_HEADER].decode(): at
        for record, at in zip(records, written, strict=True)
    }
    positions: dict[str, dict[TopicPartition, int]] = {}
    for row in await asyncio.to_thread(_progress, engine):
        found = where.get(row.notification_id)
        if found is not None and found[0] == row.topic:
            positions.setdefault(row.reader_group, {})[TopicPartition(found[0], found[1])] = found[2] + 1
    for group, offsets in positions.items():
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **options
        )
        await reader.start()
        try:
            reader.assign(list(offsets))
            await reader.commit(offsets)
        finally:
            await reader.stop()
    return Restored(len(records), len(positions))


def _copies_not_purged(engine: Engine) -> list[DeadLetterCopy]:
    with Session(engine) as session:
        purged = {(row.partition, row.offset) for row in session.scalars(select(PurgedDeadLetter))}
        copies = session.scalars(select(DeadLetterCopy).order_by(DeadLetterCopy.id)).all()
        return [copy for copy in copies if (copy.partition, copy.offset) not in purged]


def _moved(engine: Engine, copies: list[DeadLetterCopy], places: list[tuple[int, int]]) -> None:
    """The copies put back, at their new places; purged ones and the old purge list are gone with the old topic."""
    with Session(engine) as session, session.begin():
        session.execute(delete(DeadLetterCopy))
        session.execute(delete(PurgedDeadLetter))
        session.add_all(
            DeadLetterCopy(
                partition=partition,
                offset=offset,
                key=copy.key,
                value=copy.value,
                headers=copy.headers,
                written_at=copy.written_at,
            )  # fmt: skip
            for copy, (partition, offset) in zip(copies, places, strict=True)
        )


async def restore_dead_letters(bootstrap: str, engine: Engine, topic: str, options: Mapping[str, Any]) -> int:
    """Put the dead letters not purged back on an empty dead-letter topic (see the module); how many."""
    if not await _queues_are_empty(bootstrap, [topic], options):
        return 0
    copies = await asyncio.to_thread(_copies_not_purged, engine)
    if not copies:
        return 0
    written = await _republish(bootstrap, [_kept_record(copy, topic, None) for copy in copies], options)
    await asyncio.to_thread(_moved, engine, copies, [(partition, offset) for _, partition, offset in written])
    return len(copies)


def keep_retries(engine: Engine, written: list[WrittenRecord]) -> None:
    """Copies of records just written to retry topics (see the module)."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add_all(
            RetryCopy(
                topic=retry.record.topic,
                partition=retry.partition,
                offset=retry.offset,
                key=retry.record.key,
                value=retry.record.value,
                headers=_headers_kept(retry.record),
                written_at=now,
            )  # fmt: skip
            for retry in written
        )


def forget_retries(engine: Engine, topic: str, taken_up_to: Mapping[int, int]) -> None:
    """A retry tier has taken its records up to these offsets (by partition): their copies are no longer owed."""
    with Session(engine) as session, session.begin():
        for partition, offset in taken_up_to.items():
            session.execute(
                delete(RetryCopy).where(
                    RetryCopy.topic == topic, RetryCopy.partition == partition, RetryCopy.offset <= offset
                )
            )


def _retry_copies(engine: Engine, topics: set[str]) -> list[RetryCopy]:
    with Session(engine) as session:
        return [
            copy for copy in session.scalars(select(RetryCopy).order_by(RetryCopy.id)) if copy.topic in topics
        ]


def _retries_moved(engine: Engine, copies: list[RetryCopy], written: list[tuple[int, int]]) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(RetryCopy).where(RetryCopy.id.in_([copy.id for copy in copies])))
        session.add_all(
            RetryCopy(
                topic=copy.topic,
                partition=partition,
                offset=offset,
                key=copy.key,
                value=copy.value,
                headers=copy.headers,
                written_at=copy.written_at,
            )  # fmt: skip
            for copy, (partition, offset) in zip(copies, written, strict=True)
        )


async def restore_retries(
    bootstrap: str, engine: Engine, topics: list[str], options: Mapping[str, Any]
) -> int:
    """Put the retry ladder back on empty retry topics (see the module); how many records."""
    if not await _queues_are_empty(bootstrap, topics, options):
        return 0
    copies = await asyncio.to_thread(_retry_copies, engine, set(topics))
    if not copies:
        return 0
    records = [_kept_record(copy, copy.topic, copy.partition) for copy in copies]
    written = await _republish(bootstrap, records, options)
    places = [(partition, offset) for _, partition, offset in written]
    await asyncio.to_thread(_retries_moved, engine, copies, places)
    return len(copies)


def _published_outbound(engine: Engine, topics: set[str]) -> list[OutboundRecord]:
    query = (
        select(OutboxRecord.topic, OutboxRecord.key, OutboxRecord.payload, OutboxRecord.record_type)
        .where(OutboxRecord.published_at.is_not(None), OutboxRecord.payload.is_not(None))
        .order_by(OutboxRecord.published_at, OutboxRecord.id)
    )
    with Session(engine) as session:
        return [
            OutboundRecord(row.topic, row.key, row.payload, [(RECORD_TYPE_HEADER, row.record_type.encode())])
            for row in session.execute(query)
            if row.topic in topics
        ]


async def restore_outbound(
    bootstrap: str,
    engine: Engine,
    topics: list[str],
    seal: Callable[[list[OutboundRecord]], list[OutboundRecord]],
    options: Mapping[str, Any],
) -> int:
    """Put the published outbound records back on empty outbound topics (see the module); how many."""
    if not await _queues_are_empty(bootstrap, topics, options):
        return 0
    records = await asyncio.to_thread(_published_outbound, engine, set(topics))
    if not records:
        return 0
    await _republish(bootstrap, seal(records), options)
    return len(records)
