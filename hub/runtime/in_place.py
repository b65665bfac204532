"""Housekeeping retried in place until it works: firing timers, the outbox, writing to the broker, starting a
consumer. Not for events: those go up the retry ladder (hub/runtime/retry.py), so one that keeps failing cannot hold
back the others."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from hub import metrics

log = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 15.0


async def until_it_works(what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
    """`attempt()` again and again, with capped backoff and jitter, until it returns; each failure is logged
    (by class, never by message: it may hold data) and counted in `hub_in_place_retries_total{what}`."""
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            metrics.IN_PLACE_RETRIES.labels(what=what).inc()
            log.warning("%s failed (%s); retrying in %.1fs", what, type(error).__name__, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
