"""A unit's case management system for the delivery tests: a real HTTP server that fails some requests.

It checks every request's signature as a unit's system would, refusing (401) one unsigned or wrongly signed,
so a test can assert that everything it accepted came from the hub, and opens each sealed notification with the
unit's key.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from connectors.avro import AvroCodec
from connectors.queue_reader import notification_json
from connectors.sealing import Opener, SealedRecordError
from connectors.webhook_signature import ID_HEADER, SECRET_PREFIX, verify
from schemas import notification_schema

NOTIFICATIONS = AvroCodec([notification_schema()])

# The Standard Webhooks form, so the tests go through the base64 key the way a unit's library would.
SECRET = SECRET_PREFIX + base64.b64encode(bytes(range(32))).decode()


class Receiver:
    def __init__(self, failure_share: float, seed: int, secret: str = SECRET) -> None:
        self.failure_share = failure_share
        self.random = random.Random(seed)
        self.secret = secret
        self.lock = threading.Lock()
        self.attempts = 0
        self.refused = 0  # answered 503 on purpose
        self.unverified = 0  # answered 401: unsigned, wrongly signed or stale
        self.delivered: Counter[str] = Counter()  # notification id -> times accepted
        self.mismatched_keys = 0  # Idempotency-Key differing from the signed webhook-id
        self.unreadable = 0  # accepted, but the unit's key did not open a notification with the signed id
        self.opener: Opener | None = None  # the unit's keys, once the hub has made them
        self.url = ""

    def receive(self, headers: Mapping[str, str], body: bytes) -> int:
        # Only the signed id is used, never the body's fields: the body may be sealed for the unit.
        signed = verify(self.secret, headers, body)
        lowered = {name.lower(): value for name, value in headers.items()}
        with self.lock:
            self.attempts += 1
            if not signed:
                self.unverified += 1
                return 401
            notification_id = lowered[ID_HEADER]
            if lowered.get("idempotency-key") != notification_id:
                self.mismatched_keys += 1
            if self.random.random() < self.failure_share:
                self.refused += 1
                return 503
            self.delivered[notification_id] += 1
            if self.opener is not None and self._opened_id(body) != notification_id:
                self.unreadable += 1
            return 200

    def _opened_id(self, body: bytes) -> str | None:
        """What the unit's system reads: the sealed notification in the body, opened with the unit's key."""
        assert self.opener is not None
        try:
            sealed = base64.b64decode(json.loads(body)["sealed"])
            notification = notification_json(NOTIFICATIONS, self.opener.open(sealed))
        except (ValueError, KeyError, SealedRecordError):
            return None
        return notification["notification_id"] if notification else None


@contextmanager
def running_receiver(failure_share: float, seed: int = 5, secret: str = SECRET) -> Iterator[Receiver]:
    receiver = Receiver(failure_share, seed, secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length", "0"))
            status = receiver.receive(dict(self.headers.items()), self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:  # quiet
            pass

    class Server(ThreadingHTTPServer):
        # The standard library listens with a backlog of 5. The hub sends up to 16 requests at once, each on a
        # new connection (this server speaks HTTP/1.0). On a busy machine the kernel then drops connections
        # before the server can accept them, and a dropped connection can reach the hub's timeout unseen here.
        # The tests would then count failures that this receiver never decided.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/notifications"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
