"""An urgent event is routed while a backlog of ordinary events drains, not after it.

A victim must hear that the offender escaped even while the hub is catching up after an outage. The urgent lane
has its own consumer and goes first at the case store (hub/runtime/lanes.py, hub/runtime/store_gate.py);
otherwise an urgent event fetched beside a backlog would wait seconds for it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.cases import escape, publish_all, slice_events
from tests.integration.conftest import Hub, new_hub, running_worker
from tests.integration.waiting import counter, eventually, metrics_text, scrape

BACKLOG_CASES = 1500  # a sentence and a referral each: 3,000 ordinary events, several seconds' work


def publish_urgent(hub: Hub, topic: str, encoded: tuple[str, bytes, bytes | None]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=hub.env["HUB_BROKER"], acks="all")
        await producer.start()
        try:
            source, value, key = encoded
            await producer.send_and_wait(
                topic, value, key=key, headers=hub.signer(source).headers(topic, key, value)
            )
        finally:
            await producer.stop()

    asyncio.run(send())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_escape_is_routed_while_a_backlog_of_ordinary_events_waits(
    broker: str, database_url: str, tmp_path
) -> None:
    now = datetime.now(UTC)
    hub = new_hub(broker, database_url, tmp_path)
    escaped = escape(0, now)
    backlog = [event for n in range(1, BACKLOG_CASES + 1) for event in slice_events(n, now)[:2]]

    for _ in running_worker(hub):
        publish_all(hub, [slice_events(0, now)[:2]])  # the case the escape is about, with its victim
        eventually(
            lambda: scrape(hub.web, "hub_events_consumed_total", source="witness-care", outcome="accepted"),
            lambda referred: referred >= 1,
            60,
            0.5,
        )

        publish_all(hub, [backlog])
        publish_urgent(hub, f"{hub.prefix}agency.prison.urgent", escaped)
        published = time.monotonic()

        def when_urgent_seen() -> tuple[float, float]:
            text = metrics_text(hub.web)
            return (
                counter(text, "hub_notifications_total", priority="urgent"),
                counter(text, "hub_events_consumed_total", source="court")
                + counter(text, "hub_events_consumed_total", source="witness-care"),
            )

        urgent, consumed = eventually(when_urgent_seen, lambda seen: seen[0] >= 1, 120, 0.2)
        took = time.monotonic() - published
        assert urgent >= 1, "no urgent notification"

        ordinary = len(backlog) + 2
        print(
            f"urgent notification {took:.1f}s after publishing; {consumed:.0f} of {ordinary} ordinary applied"
        )
        assert consumed < 1 + len(backlog) / 2, "the escape waited for most of the backlog"
        # And the backlog is not starved: it all drains.
        referred = eventually(
            lambda: scrape(hub.web, "hub_events_consumed_total", source="witness-care"),
            lambda referred: referred >= BACKLOG_CASES + 1,
            180,
            1,
        )
        assert referred == BACKLOG_CASES + 1
