"""HTTP delivery against a real local server: retries what may pass, stops at what will not, never raises."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from connectors.http_sink import HttpSink

BODY = {"notification_id": "n-1", "summary": "released"}


@contextmanager
def endpoint(statuses: list[int], delay: float = 0.0) -> Iterator[tuple[str, list[str]]]:
    """Answers with each status in turn (the last one repeats); records each request's Idempotency-Key."""
    keys: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            keys.append(self.headers.get("Idempotency-Key", ""))
            time.sleep(delay)
            self.send_response(statuses[min(len(keys), len(statuses)) - 1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", keys
    finally:
        server.shutdown()
        server.server_close()


def deliver(url: str, attempts: int = 4, timeout: float = 2.0):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(timeout=timeout) as client:
            sink = HttpSink(url, client, attempts=attempts, backoff_seconds=0.01)
            return await asyncio.wait_for(sink.deliver("n-1", BODY), 30)

    return asyncio.run(run())


def test_a_failing_moment_is_retried_until_delivered() -> None:
    with endpoint([503, 502, 200]) as (url, keys):
        delivery = deliver(url)

    assert delivery.delivered
    assert [a.error_class for a in delivery.attempts] == ["HTTP503", "HTTP502", None]
    assert keys == ["n-1", "n-1", "n-1"]  # the receiver can drop a repeat by its key


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_limit() -> None:
    with endpoint([500]) as (url, keys):
        delivery = deliver(url, attempts=3)

    assert not delivery.delivered
    assert delivery.error_class == "HTTP500"
    assert len(keys) == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_refusal_is_not_retried(status: int) -> None:
    with endpoint([status]) as (url, keys):
        delivery = deliver(url)

    assert not delivery.delivered and delivery.error_class == f"HTTP{status}"
    assert len(keys) == 1


def test_a_slow_endpoint_times_out_and_is_retried() -> None:
    with endpoint([200], delay=0.5) as (url, keys):
        delivery = deliver(url, attempts=2, timeout=0.1)

    assert not delivery.delivered
    assert [a.error_class for a in delivery.attempts] == ["Timeout", "Timeout"]


def test_nobody_listening_is_a_connection_error_not_a_crash() -> None:
    with endpoint([200]) as (url, _):
        pass  # the server is gone once the block ends

    delivery = deliver(url, attempts=2)

    assert not delivery.delivered and delivery.error_class == "ConnectError"
