"""faust asks the broker to hold each fetch up to 1.5 s for data to arrive (hard-coded in its Kafka driver).

Apache Kafka answers such a fetch as soon as one byte is there; Tansu, the embedded broker, holds it for most
of the wait (measured: a single event took 730 ms at the median to reach a consumer of 100 partitions with
faust's wait, 25 ms with a 100 ms wait). So the hub sets the wait itself (`fetch_wait_ms`).

The wait is a trade: every fetch is a request the worker encodes and decodes in Python and the broker answers,
over every partition of the lane. Measured on Tansu, 36 partitions (2026-11-23): at 10 ms an idle worker spent
30 % of a core and the broker 57 %, and under load the worker 1 ms of CPU more per event than at 50 ms; at 50 ms
an event waits about 20 ms (p50; p99 45 ms at 900 events/s) instead of 11 ms. Apache Kafka answers at once
whatever the wait. The agency lanes have consumers of their own (hub/lanes.py): the ordinary lane
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
