"""faust asks the broker to hold each fetch up to 1.5 s for data to arrive (hard-coded in its Kafka driver).

Apache Kafka answers such a fetch as soon as one byte is there; Tansu, the embedded broker, holds it for the
whole wait when the consumer has many partitions (measured: a single event took 730 ms at the median to reach
a consumer of 100 partitions, 25 ms with a 100 ms wait). The hub's consumer has an events topic and an urgent
lane per agency plus the retry tiers, so it asks for short waits instead: an idle worker sends a few more
fetch requests, and an event is picked up within milliseconds on either broker.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka

FETCH_MAX_WAIT_MS = 10


class _PromptFetchThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class _PromptFetchConsumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _PromptFetchThread(self, loop=self.loop, beacon=self.beacon)


def fetch_promptly(app: faust.App) -> None:
    """Make `app`'s consumer (not created yet) ask for short fetch waits."""
    app.transport.Consumer = _PromptFetchConsumer  # type: ignore[misc]
