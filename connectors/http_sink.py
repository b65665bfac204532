"""Delivery of notifications to a unit's case management system over HTTP.

One POST of the notification as JSON per attempt, with the notification id as `Idempotency-Key` so the
receiving system can drop a repeat (delivery is at least once). A timeout, a connection error, 408, 429 and
5xx are worth trying again after a growing, jittered delay; any other 4xx is the receiver refusing this
notification, and trying again would not change its mind. After the last attempt the caller dead-letters it.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Attempt:
    at: datetime
    seconds: float
    error_class: str | None  # None: delivered


@dataclass
class Delivery:
    """What happened to one notification at one endpoint."""

    notification_id: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].error_class is None

    @property
    def error_class(self) -> str | None:
        return self.attempts[-1].error_class if self.attempts else None


class HttpSink:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.url = url
        self.client = client
        self.max_attempts = attempts
        self.backoff_seconds = backoff_seconds

    async def deliver(self, notification_id: str, body: dict[str, Any]) -> Delivery:
        """Try until delivered, refused, or out of attempts; never raises for the endpoint's failures."""
        delivery = Delivery(notification_id)
        delay = self.backoff_seconds
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            error_class, retryable = await self._post(notification_id, body)
            delivery.attempts.append(Attempt(datetime.now(UTC), time.monotonic() - started, error_class))
            if error_class is None or not retryable or attempt == self.max_attempts:
                return delivery
            # Full jitter keeps many workers retrying one recovering endpoint from arriving in step.
            await asyncio.sleep(random.uniform(0.5, 1.0) * delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        return delivery

    async def _post(self, notification_id: str, body: dict[str, Any]) -> tuple[str | None, bool]:
        """(error class or None, worth retrying)."""
        try:
            response = await self.client.post(
                self.url, json=body, headers={"Idempotency-Key": notification_id}
            )
        except httpx.TimeoutException:
            return "Timeout", True
        except httpx.HTTPError as error:
            return type(error).__name__, True
        if response.is_success:
            return None, False
        return f"HTTP{response.status_code}", response.status_code in RETRYABLE_STATUS
