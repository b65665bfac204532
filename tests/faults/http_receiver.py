"""A unit's case management system for the delivery tests: a real HTTP server that fails some requests."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, failure_share: float, seed: int) -> None:
        self.failure_share = failure_share
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.attempts = 0
        self.refused = 0
        self.delivered: Counter[str] = Counter()  # notification id -> times accepted
        self.mismatched_keys = 0  # Idempotency-Key differing from the body's notification id
        self.url = ""

    def receive(self, key: str | None, body: dict) -> int:
        with self.lock:
            self.attempts += 1
            if key != body.get("notification_id"):
                self.mismatched_keys += 1
            if self.random.random() < self.failure_share:
                self.refused += 1
                return 503
            self.delivered[body["notification_id"]] += 1
            return 200


@contextmanager
def running_receiver(failure_share: float, seed: int = 5) -> Iterator[Receiver]:
    receiver = Receiver(failure_share, seed)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length", "0"))
            status = receiver.receive(
                self.headers.get("Idempotency-Key"), json.loads(self.rfile.read(length))
            )
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
