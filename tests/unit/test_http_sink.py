"""HTTP delivery against a real local server: retries what may pass, stops at what will not, never raises;
every request signed so the receiver can tell it came from the hub, and only https beyond this machine."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.http_sink import HttpSink, endpoint_url_problem
from connectors.webhook_signature import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    signing_key,
    verify,
)
from hub.settings import Settings

BODY = {"notification_id": "n-1", "summary": "released", "name": "Zoë"}
SECRET = "a-unit-secret-of-at-least-32-characters"
OTHER_SECRET = "another-unit-secret-of-32-characters-too"
# The Standard Webhooks specification's published test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str
    requests: list[Received] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [r.headers.get("Idempotency-Key", "") for r in self.requests]


@contextmanager
def endpoint(statuses: list[int], delay: float = 0.0, secret: str | None = None) -> Iterator[Endpoint]:
    """Answers with each status in turn (the last one repeats) and records each request; given a secret, it
    answers 401 to a request whose signature does not verify, as a unit's system would."""
    received = Endpoint("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            request = Received(
                dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"]))
            )
            received.requests.append(request)
            time.sleep(delay)
            if secret is not None and not verify(secret, request.headers, request.body):
                status = 401
            else:
                status = statuses[min(len(received.requests), len(statuses)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def deliver(  # type: ignore[no-untyped-def]
    url: str,
    attempts: int = 4,
    timeout: float = 2.0,
    secret: str = SECRET,
    body: dict[str, Any] | bytes = BODY,
    backoff: float = 0.01,
):
    async def run():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(timeout=timeout) as client:
            sink = HttpSink(url, client, secret=secret, attempts=attempts, backoff_seconds=backoff)
            return await asyncio.wait_for(sink.deliver("n-1", body), 30)

    return asyncio.run(run())


def test_a_failing_moment_is_retried_until_delivered() -> None:
    with endpoint([503, 502, 200]) as received:
        delivery = deliver(received.url)

    assert delivery.delivered
    assert [a.error_class for a in delivery.attempts] == ["HTTP503", "HTTP502", None]
    assert received.keys == ["n-1", "n-1", "n-1"]  # the receiver can drop a repeat by its key


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_limit() -> None:
    with endpoint([500]) as received:
        delivery = deliver(received.url, attempts=3)

    assert not delivery.delivered
    assert delivery.error_class == "HTTP500"
    assert len(received.requests) == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_refusal_is_not_retried(status: int) -> None:
    with endpoint([status]) as received:
        delivery = deliver(received.url)

    assert not delivery.delivered and delivery.error_class == f"HTTP{status}"
    assert len(received.requests) == 1


def test_a_slow_endpoint_times_out_and_is_retried() -> None:
    with endpoint([200], delay=0.5) as received:
        delivery = deliver(received.url, attempts=2, timeout=0.1)

    assert not delivery.delivered
    assert [a.error_class for a in delivery.attempts] == ["Timeout", "Timeout"]


def test_nobody_listening_is_a_connection_error_not_a_crash() -> None:
    with endpoint([200]) as received:
        pass  # the server is gone once the block ends

    delivery = deliver(received.url, attempts=2)

    assert not delivery.delivered and delivery.error_class == "ConnectError"


# Signing, as the receiver sees it.


@pytest.mark.parametrize("secret", [SECRET, VECTOR_SECRET])
def test_every_attempt_is_signed_over_the_exact_json_bytes_sent(secret: str) -> None:
    with endpoint([503, 200], secret=secret) as received:
        delivery = deliver(received.url, secret=secret)

    assert delivery.delivered and len(received.requests) == 2
    for request in received.requests:
        assert verify(secret, request.headers, request.body)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers[ID_HEADER] == request.headers["Idempotency-Key"] == "n-1"
        assert json.loads(request.body) == BODY
    assert (
        received.requests[0].body == received.requests[1].body
    )  # serialized once, the same on every attempt


def test_a_body_given_as_bytes_is_sent_and_signed_unchanged() -> None:
    sealed = b'{"sealed": "AAEC", "key_id": "yh-1"}'
    with endpoint([200], secret=SECRET) as received:
        delivery = deliver(received.url, body=sealed)

    assert delivery.delivered
    assert received.requests[0].body == sealed


def test_a_receiver_with_another_secret_refuses_and_it_is_not_retried() -> None:
    with endpoint([200], secret=OTHER_SECRET) as received:
        delivery = deliver(received.url, secret=SECRET)

    assert not delivery.delivered and delivery.error_class == "HTTP401"
    assert len(received.requests) == 1


def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    assert signature(signing_key(VECTOR_SECRET), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_plain_secret_is_its_utf8_bytes_and_a_whsec_secret_its_base64_decoded_bytes() -> None:
    assert signing_key(SECRET) == SECRET.encode()
    assert signing_key(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signing_key(b"raw bytes") == b"raw bytes"


# verify(), the receiver's check.


def fresh(secret: str = SECRET, body: bytes = b'{"notification_id":"n-1"}', age: int = 0) -> dict[str, str]:
    return signed_headers(signing_key(secret), "n-1", body, timestamp=int(time.time()) - age)


def test_a_correct_signature_verifies() -> None:
    assert verify(SECRET, fresh(), b'{"notification_id":"n-1"}')


def test_header_names_are_matched_whatever_their_case() -> None:
    headers = {name.title(): value for name, value in fresh().items()}
    assert verify(SECRET, headers, b'{"notification_id":"n-1"}')


def test_a_changed_body_fails() -> None:
    assert not verify(SECRET, fresh(), b'{"notification_id":"n-2"}')
    assert not verify(SECRET, fresh(), b'{"notification_id":"n-1"} ')


def test_a_wrong_secret_fails() -> None:
    assert not verify(OTHER_SECRET, fresh(), b'{"notification_id":"n-1"}')


def test_another_id_fails() -> None:
    headers = {**fresh(), ID_HEADER: "n-2"}
    assert not verify(SECRET, headers, b'{"notification_id":"n-1"}')


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_a_timestamp_outside_the_tolerance_fails(age: int) -> None:
    body = b'{"notification_id":"n-1"}'
    assert not verify(SECRET, fresh(body=body, age=age), body)
    assert verify(SECRET, fresh(body=body, age=age), body, tolerance_seconds=abs(age) + 60)


def test_a_timestamp_moved_into_the_tolerance_fails() -> None:
    body = b'{"notification_id":"n-1"}'
    headers = {**fresh(body=body, age=3600), TIMESTAMP_HEADER: str(int(time.time()))}
    assert not verify(SECRET, headers, body)


@pytest.mark.parametrize("missing", [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_an_unsigned_request_fails(missing: str) -> None:
    headers = {name: value for name, value in fresh().items() if name != missing}
    assert not verify(SECRET, headers, b'{"notification_id":"n-1"}')


@pytest.mark.parametrize("offered", ["", "v1,", "v1,not-base64!", "garbage", "v2,AAAA", "v1,Zm9v v1,YmFy"])
def test_a_malformed_signature_fails_without_raising(offered: str) -> None:
    headers = {**fresh(), SIGNATURE_HEADER: offered}
    assert not verify(SECRET, headers, b'{"notification_id":"n-1"}')


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = fresh()
    headers[SIGNATURE_HEADER] = f"v1,Zm9vYmFy {headers[SIGNATURE_HEADER]}"
    assert verify(SECRET, headers, b'{"notification_id":"n-1"}')


def test_a_non_numeric_timestamp_fails() -> None:
    assert not verify(SECRET, {**fresh(), TIMESTAMP_HEADER: "yesterday"}, b'{"notification_id":"n-1"}')


# Start-up checks: refused in settings, naming the unit, quoting neither the URL nor the secret.


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/notify",
        "http://127.9.9.9/notify",
        "http://[::1]:8080/notify",
        "http://localhost/notify",
        "http://LOCALHOST:1/notify",
        "https://cms.example/notify",
    ],
)
def test_https_anywhere_and_plain_http_to_loopback_are_accepted(url: str) -> None:
    assert endpoint_url_problem(url) is None
    settings = Settings(http_endpoints={"YH": url}, http_secrets={"YH": SECRET})
    assert settings.http_secrets["YH"].get_secret_value() == SECRET


@pytest.mark.parametrize(
    "url",
    [
        "http://cms.example/notify?token=s3cr3t-token",
        "http://user:pa55word@cms.example/notify",
        "http://10.0.0.5/notify",
        "http://localhost.cms.example/notify",
        "http://[::ffff:10.0.0.1]/notify",
        "ftp://cms.example/notify",
        "cms.example/notify",
        "https:///notify",
    ],
)
def test_a_plain_http_endpoint_beyond_this_machine_is_refused_at_start_up(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(http_endpoints={"YH": url}, http_secrets={"YH": SECRET})

    message = str(refused.value)
    assert "unit YH" in message and "HUB_HTTP_ENDPOINTS" in message
    assert "cms.example" not in message and "s3cr3t" not in message and "pa55word" not in message
    assert SECRET not in message


def test_a_missing_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            http_endpoints={"YH": "https://yh.example/notify", "NE": "https://ne.example/notify"},
            http_secrets={"YH": SECRET},
        )

    message = str(refused.value)
    assert "HUB_HTTP_SECRETS" in message and "unit NE" in message and "YH" not in message
    assert SECRET not in message


@pytest.mark.parametrize("secret", ["too-short", "x" * 31, "whsec_" + "!" * 40, "whsec_" + "QUFB" * 7])
def test_a_weak_or_malformed_secret_is_refused_at_start_up(secret: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(http_endpoints={"YH": "https://yh.example/notify"}, http_secrets={"YH": secret})

    message = str(refused.value)
    assert "HUB_HTTP_SECRETS, unit YH" in message
    assert secret not in message


def test_secrets_come_from_the_environment_and_stay_out_of_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_HTTP_ENDPOINTS", json.dumps({"YH": "https://yh.example/notify"}))
    monkeypatch.setenv("HUB_HTTP_SECRETS", json.dumps({"YH": SECRET}))

    settings = Settings()

    assert settings.http_secrets["YH"].get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in settings.model_dump_json()


def test_the_sink_refuses_what_settings_refuse() -> None:
    async def build(url: str, secret: str) -> None:
        async with httpx.AsyncClient() as client:
            HttpSink(url, client, secret=secret)

    with pytest.raises(ValueError, match="https"):
        asyncio.run(build("http://cms.example/notify", SECRET))
    with pytest.raises(ValueError, match="32 characters"):
        asyncio.run(build("https://cms.example/notify", "too-short"))
