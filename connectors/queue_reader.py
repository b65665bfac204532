"""The VLO queue reader: a unit's notifications, decoded, each shown once per notification_id.

Delivery is at least once, so a notification may sit on its topic more than once after a crash; readers
de-duplicate on the notification id, which is stable for the same inputs. Each notification is sealed for the
unit's key, by the hub's (connectors/sealing.py): the reader opens it with the unit's private keys, and stops
with `KeyNotHeld`, naming the key id, at one sealed for a key it was not given. A record the hub did not seal
is not shown: `on_forged` hears where it is and why.

The same reader reads what the hub writes for another agency (`outbound.<agency>`, docs/domain.md section 8),
given that agency's keys and `outbound_decoder()`: each record once per record_id.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.avro import AvroCodec, UndecodableMessage
from connectors.sealing import KeyNotHeld, Opener, SealedRecordError, is_sealed
from schemas import notification_schema, outbound_schemas
from schemas.compatibility import older_writers
from schemas.models import NotificationModel, model_for_schema

Decoder = Callable[[bytes | None], dict[str, Any] | None]

# The header naming each notification on a unit queue (hub/pipeline/delivery.py writes it; not a `hub.` header, so a
# dead-letter replay keeps it).
NOTIFICATION_ID_HEADER = "notification_id"
READER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def reader_group(topic_prefix: str, unit: str, reader: str | None = None) -> str:
    """A reader's consumer group, always under its own unit's name, so a reader of one unit cannot move another
    unit's progress (in production, broker ACLs give each unit only the groups under its name)."""
    if reader is None:
        return f"{topic_prefix}vlo-reader.{unit}"
    if not READER_NAME.fullmatch(reader):
        raise ValueError("a reader name is 1-64 letters, digits, '-' or '_'")
    return f"{topic_prefix}vlo-reader.{unit}.{reader}"


async def read_queue(
    bootstrap_servers: str,
    topic: str,
    *,
    opener: Opener,
    from_beginning: bool = False,
    reader: str | None = None,
    idle_timeout: float = 5.0,
    follow: bool = False,
    client_options: Mapping[str, Any] | None = None,
    on_forged: Callable[[str], None] = lambda _: None,
    on_progress: Callable[[dict[int, str]], None] = lambda _: None,
    decode: Decoder | None = None,
    id_field: str = "notification_id",
) -> AsyncIterator[dict[str, Any]]:
    """Yield notifications as JSON-ready dicts.

    With `from_beginning`, every notification on the queue. Otherwise the ones this `reader` (a consumer group)
    has not been shown yet: everything on its first run, then only what is new, so a unit's system that
    reads its queue now and then misses nothing. Without `follow`, stops once it has read to the end of the
    queue and nothing new came for `idle_timeout` seconds; with `follow`, runs until cancelled. `decode` and
    `id_field`: another kind of record than notifications (`outbound_decoder`, "record_id").
    """
    # A notification written before the schema last changed is read too.
    codec = AvroCodec([notification_schema()], older_writers())
    decode = decode or (lambda value: notification_json(codec, value))
    group = None if from_beginning else reader
    # client_options: the broker connection's security keyword arguments, as aiokafka names them; none: plaintext.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        group_id=group,
        **(client_options or {}),
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        if group is not None:
            for tp in partitions:
                committed = await consumer.committed(tp)
                if committed is not None:
                    consumer.seek(tp, committed)
        seen: set[str] = set()
        last_message = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            read_up_to: dict[int, str] = {}  # partition -> the last notification read there
            for records in batches.values():
                for record in records:
                    last_message = time.monotonic()
                    if not is_sealed(record.value):  # not written by the hub: not a notification
                        continue
                    assert record.value is not None
                    try:
                        opened = opener.open(record.value)
                    except KeyNotHeld:
                        raise  # the reader lacks one of its unit's keys: it must say so, not skip
                    except SealedRecordError as error:  # not sealed by the hub: whoever wrote it, not shown
                        on_forged(f"{record.topic}[{record.partition}]@{record.offset}: {error}")
                        continue
                    notification = decode(opened)
                    if notification is None:
                        continue
                    read_up_to[record.partition] = notification[id_field]
                    if notification[id_field] in seen:
                        continue
                    seen.add(notification[id_field])
                    yield notification
            if batches and group is not None:
                await consumer.commit()  # what was printed is not shown to this reader again
                on_progress(read_up_to)
            idle = not batches and time.monotonic() - last_message >= idle_timeout
            if not follow and idle and await _caught_up(consumer, partitions):
                return
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer.topics()  # refreshes the metadata
        await asyncio.sleep(0.1)
    raise LookupError(f"queue {topic} does not exist")


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        if await consumer.position(tp) < ends[tp]:
            return False
    return True


def notification_json(codec: AvroCodec, value: bytes | None) -> dict[str, Any] | None:
    """A notification record as the JSON a unit sees; None for a record that is not a notification."""
    try:
        decoded = codec.decode(value or b"")
    except UndecodableMessage:
        return None
    return NotificationModel.model_validate(decoded.record).model_dump(mode="json")


def outbound_decoder() -> Decoder:
    """Decodes what the hub writes for other agencies into JSON-ready dicts, each with its `record_type`; None for
    a record that is none of them."""
    schemas = list(outbound_schemas().values())
    codec = AvroCodec(schemas)
    models = {schema.fullname: model_for_schema(schema) for schema in schemas}

    def decode(value: bytes | None) -> dict[str, Any] | None:
        try:
            decoded = codec.decode(value or b"")
        except UndecodableMessage:
            return None
        record = models[decoded.schema.fullname].model_validate(decoded.record).model_dump(mode="json")
        return {"record_type": decoded.schema.name, **record}

    return decode
