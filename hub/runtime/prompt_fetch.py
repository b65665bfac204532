"""faust asks the broker to hold each fetch up to 1.5 s for data to arrive (hard-coded in its Kafka driver).

Apache Kafka answers such a fetch as soon as one byte is there; Tansu, the embedded broker, holds it for most
of the wait, so with faust's wait a single event reaches a consumer of many partitions most of a second late.
So the hub sets the wait itself (`fetch_wait_ms`).

The wait is a trade: every fetch is a request the worker encodes and decodes in Python and the broker answers,
over every partition of the lane. On Tansu a short wait keeps an idle worker and the broker busy and costs the
worker CPU on every event under load; a long one adds to every event's latency. Apache Kafka answers at once
whatever the wait. The agency lanes have consumers of their own (hub/runtime/lanes.py): the ordinary lane
uses the same wait, the urgent lane a shorter one.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka


def fetch_promptly(app: faust.App, wait_ms: int) -> None:
    """Make `app`'s consumer (not created yet) ask the broker to hold a fetch at most `wait_ms`."""

    class _Thread(faust_kafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = wait_ms  # read when the consumer starts its fetcher
            return consumer

    class _Consumer(faust_kafka.Consumer):
        def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
            return _Thread(self, loop=self.loop, beacon=self.beacon)

    app.transport.Consumer = _Consumer  # type: ignore[misc]
