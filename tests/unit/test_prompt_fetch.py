"""The worker's faust consumer asks the broker for the fetch wait the settings give, not faust's 1.5 s."""

from __future__ import annotations

import faust
import pytest

from hub.runtime.prompt_fetch import fetch_promptly
from hub.settings import Settings


@pytest.mark.asyncio
async def test_the_consumer_asks_for_the_configured_fetch_wait() -> None:
    app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    fetch_promptly(app, Settings(fetch_wait_ms=37).fetch_wait_ms)

    consumer = app.consumer._thread._create_worker_consumer(app.transport)  # not started: no broker needed
    try:
        assert consumer._fetch_max_wait_ms == 37
    finally:
        await consumer.stop()


def test_the_default_wait_is_a_short_one() -> None:
    # faust's own 1.5 s would hold each ordinary event most of that time on Tansu.
    assert 1 <= Settings().fetch_wait_ms <= 100
