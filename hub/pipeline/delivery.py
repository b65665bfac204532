"""HTTP delivery: units configured with an endpoint also get each notification from their queue by POST.

It reads the unit queues (the record of what was decided), not the routing path, so a failing endpoint slows
only its own deliveries. A notification the endpoint never accepted becomes a dead letter at stage `deliver`
with its attempts; replaying it puts it back on the queue, from where it is delivered again. Each request is
signed with the unit's own secret (HUB_HTTP_SECRETS), so no unit's system can pass off a request to another
as the hub's. The body carries the notification as it is on the queue, sealed for the unit's key: the hub
cannot read it, and only the unit's system can (README, Security).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable

import httpx

from connectors.http_sink import Delivery, HttpSink
from connectors.queue_reader import NOTIFICATION_ID_HEADER
from connectors.sealing import is_sealed
from hub import metrics
from hub.messages import InboundMessage, OutboundRecord, dead_letter, log_without_values
from hub.settings import Settings

log = logging.getLogger(__name__)

# Enough in flight to hide one slow endpoint's latency, few enough not to swamp a recovering one.
CONCURRENT_DELIVERIES = 16


class HttpDeliveries:
    def __init__(self, settings: Settings, send: Callable[[list[OutboundRecord]], Awaitable[None]]) -> None:
        self.settings = settings
        self.send = send
        self.endpoints = dict(settings.http_endpoints)
        self._client: httpx.AsyncClient | None = None
        self._sinks: dict[str, HttpSink] = {}

    def topics(self) -> list[str]:
        return [self.settings.unit_topic(unit) for unit in sorted(self.endpoints)]

    def _sink(self, unit: str) -> HttpSink:
        if self._client is None:  # created inside the running event loop
            self._client = httpx.AsyncClient(timeout=self.settings.http_timeout_seconds)
        if unit not in self._sinks:
            self._sinks[unit] = HttpSink(
                self.endpoints[unit],
                self._client,
                secret=self.settings.http_secrets[unit].get_secret_value(),
                attempts=self.settings.http_attempts,
                backoff_seconds=self.settings.http_backoff_seconds,
            )
        return self._sinks[unit]

    def _unit_of(self, topic: str) -> str | None:
        return next((unit for unit in self.endpoints if self.settings.unit_topic(unit) == topic), None)

    async def deliver(self, messages: list[InboundMessage]) -> None:
        """Deliver a batch from the unit queues; returns once each is delivered or dead-lettered."""
        limit = asyncio.Semaphore(CONCURRENT_DELIVERIES)

        async def one(message: InboundMessage) -> OutboundRecord | None:
            async with limit:
                try:
                    return await self._deliver_one(message)
                except Exception as error:  # never lose a notification to a bug: it becomes a dead letter
                    log_without_values(log, f"delivering {message.topic}@{message.offset} failed", error)
                    metrics.DEAD_LETTERS.labels(stage="deliver", error_class=type(error).__name__).inc()
                    reason = f"{type(error).__name__} while delivering; see the worker log"
                    return dead_letter(
                        message, self.settings.dead_letter_topic, "deliver", type(error).__name__, reason
                    )

        failed = await asyncio.gather(*(one(message) for message in messages))
        await self.send([record for record in failed if record is not None])

    async def _deliver_one(self, message: InboundMessage) -> OutboundRecord | None:
        unit = self._unit_of(message.topic)
        notification_id = dict(message.headers).get(NOTIFICATION_ID_HEADER, b"").decode("ascii", "replace")
        if unit is None or not notification_id or not is_sealed(message.value):
            return None  # not a notification of a unit with an endpoint: nothing to deliver
        assert message.value is not None
        body = {
            "notification_id": notification_id,
            "unit_code": unit,
            "sealed": base64.b64encode(message.value).decode("ascii"),
        }
        delivery = await self._sink(unit).deliver(notification_id, body)
        for attempt in delivery.attempts:
            outcome = "delivered" if attempt.error_class is None else "failed"
            metrics.DELIVERIES.labels(unit=unit, outcome=outcome).inc()
            metrics.DELIVERY_SECONDS.labels(unit=unit).observe(attempt.seconds)
        if delivery.delivered:
            return None
        return self._dead_letter(message, unit, delivery)

    def _dead_letter(self, message: InboundMessage, unit: str, delivery: Delivery) -> OutboundRecord:
        error_class = delivery.error_class or "Undelivered"
        metrics.DELIVERIES.labels(unit=unit, outcome="dead_letter").inc()
        metrics.DEAD_LETTERS.labels(stage="deliver", error_class=error_class).inc()
        log.warning(
            "notification %s not delivered to unit %s after %d attempts (%s)",
            delivery.notification_id,
            unit,
            len(delivery.attempts),
            error_class,
        )
        history = [
            {"at": a.at.isoformat(), "stage": "deliver", "error_class": a.error_class, "tier": 0}
            for a in delivery.attempts
        ]
        return dead_letter(
            message,
            self.settings.dead_letter_topic,
            "deliver",
            error_class,
            f"unit {unit} endpoint: {error_class} after {len(delivery.attempts)} attempts",
            attempts=len(delivery.attempts),
            first_failure_at=delivery.attempts[0].at,
            history=json.dumps(history),
        )
