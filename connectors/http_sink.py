"""Delivery of notifications to a unit's case management system over HTTP.

One POST of the notification as JSON per attempt, with the notification id as `Idempotency-Key` so the
receiving system can drop a repeat (delivery is at least once). Every POST is signed with the endpoint's own
secret (connectors/webhook_signature.py), so the receiver can tell the hub from anyone else who can reach it,
and goes over https: plain http only to this machine, where nobody else is on the wire. A timeout, a
connection error, 408, 429 and 5xx are worth trying again after a growing, jittered delay; any other 4xx is
the receiver refusing this notification (401: it does not accept the signature), and trying again would not
change its mind. After the last attempt the caller dead-letters it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.webhook_signature import secret_problem, signed_headers, signing_key

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30.0
LOOPBACK_NAMES = frozenset({"localhost"})


def endpoint_url_problem(url: str) -> str | None:
    """Why an endpoint URL is refused, or None. Never quotes the URL: it may carry credentials or tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "the endpoint is not a valid URL"
    if not host:
        return "the endpoint URL has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback(host):
            return None
        return "the endpoint must use https (plain http is allowed only to a loopback host)"
    return "the endpoint must be an https URL"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        secret: str,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
    ) -> None:
        problem = endpoint_url_problem(url) or secret_problem(secret)
        if problem is not None:
            raise ValueError(problem)
        self.url = url
        self.client = client
        self._key = signing_key(secret)
        self.max_attempts = attempts
        self.backoff_seconds = backoff_seconds

    async def deliver(self, notification_id: str, body: Mapping[str, Any] | bytes) -> Delivery:
        """Try until delivered, refused, or out of attempts; never raises for the endpoint's failures.

        `body` is sent as JSON; bytes are taken as JSON already serialized and sent unchanged.
        """
        # Serialized once: the signature covers these exact bytes, on every attempt.
        content = body if isinstance(body, bytes) else json_bytes(body)
        delivery = Delivery(notification_id)
        delay = self.backoff_seconds
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            error_class, retryable = await self._post(notification_id, content)
            delivery.attempts.append(Attempt(datetime.now(UTC), time.monotonic() - started, error_class))
            if error_class is None or not retryable or attempt == self.max_attempts:
                return delivery
            # Full jitter keeps many workers retrying one recovering endpoint from arriving in step.
            await asyncio.sleep(random.uniform(0.5, 1.0) * delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        return delivery

    async def _post(self, notification_id: str, content: bytes) -> tuple[str | None, bool]:
        """(error class or None, worth retrying)."""
        # Signed afresh for each attempt: a retry late in the backoff must still fall inside the receiver's
        # tolerance for the timestamp.
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification_id,
            **signed_headers(self._key, notification_id, content),
        }
        try:
            response = await self.client.post(self.url, content=content, headers=headers)
        except httpx.TimeoutException:
            return "Timeout", True
        except httpx.HTTPError as error:
            return type(error).__name__, True
        if response.is_success:
            return None, False
        return f"HTTP{response.status_code}", response.status_code in RETRYABLE_STATUS


def json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
