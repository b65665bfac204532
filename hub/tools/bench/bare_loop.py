"""The bare loop a bench run compares the hub with: a plain aiokafka consume-and-produce loop, run in a process of
its own (`python -m hub.tools.bench.bare_loop ADDRESS OUTPUT FETCH_WAIT_MS TOPIC...`)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any

from hub.settings import Settings


async def bare_loop(
    address: str,
    output: str,
    fetch_wait_ms: int,
    topics: list[str],
    *,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Consume the inbound copies and produce each message to one output topic, waiting for the broker's
    acknowledgement once per fetched batch, as the worker does: the most a Python Kafka client does here.

    It asks the broker to hold a fetch as long as the worker's ordinary lane does (`HUB_FETCH_WAIT_MS`), so the
    two are compared on the same fetch behaviour: Tansu holds a fetch for most of its wait
    (hub/runtime/prompt_fetch.py), and with a longer wait than the worker's the loop would spend most of its run
    waiting and understate what the broker can do."""
    import signal

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=address,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,  # the worker's: the same fetch behaviour
        **(client_options or {}),
    )
    producer = AIOKafkaProducer(bootstrap_servers=address, acks="all", linger_ms=0, **(client_options or {}))
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        print("ready", flush=True)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            futures = [
                await producer.send(output, record.value, key=record.key, headers=list(record.headers))
                for records in batch.values()
                for record in records
            ]
            if futures:
                await asyncio.gather(*futures)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(
        bare_loop(
            sys.argv[1],
            sys.argv[2],
            int(sys.argv[3]),
            sys.argv[4:],
            client_options=Settings().kafka_client_options(),
        )
    )
