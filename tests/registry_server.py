"""An in-process Confluent Schema Registry for tests: the REST subset `python-schema-registry-client` uses.

Served by http.server on a free loopback port, in a thread. It keeps Confluent's behaviour where the hub
depends on it: schema ids are global (the same schema under two subjects has one id), registering a schema a
subject already has returns its id, 404s carry Confluent's error codes (40401 subject, 40402 version, 40403
schema), and bodies use `application/vnd.schemaregistry.v1+json`. It does not check compatibility between a
subject's versions (as if the subject's compatibility level were NONE), nor support schema references.

`requests` records each (method, path) served, so tests can see what the client's caches saved. Set `failing`
to an HTTP status to make every request fail with it, as a registry in trouble would.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from fastavro import parse_schema

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
STOP_TIMEOUT_SECONDS = 5.0
CONNECTION_TIMEOUT_SECONDS = 5.0  # a client that stops talking cannot hold a handler thread for long


@dataclass
class _Version:
    version: int
    schema_id: int


@dataclass
class RegistryState:
    schemas: dict[int, str] = field(default_factory=dict)  # id -> schema text as registered
    ids: dict[str, int] = field(default_factory=dict)  # normalised schema text -> id
    subjects: dict[str, list[_Version]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    failing: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Problem(Exception):
    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def _normalised(schema_text: str) -> str:
    # Confluent compares schemas after parsing, so whitespace and key order do not make a new id.
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT_SECONDS
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def _serve(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = unquote(self.path.split("?", 1)[0]).rstrip("/")
        state.requests.append((method, path))
        try:
            if state.failing is not None:
                raise _Problem(state.failing, 50001, "Error in the backend data store")
            with state.lock:
                status, answer = _route(state, method, path, body)
        except _Problem as problem:
            status, answer = problem.status, {"error_code": problem.error_code, "message": problem.message}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _route(state: RegistryState, method: str, path: str, body: bytes) -> tuple[int, Any]:
    if method == "GET" and path == "/subjects":
        return 200, sorted(state.subjects)
    if method == "GET" and (match := re.fullmatch(r"/schemas/ids/(\d+)", path)):
        schema_id = int(match[1])
        if schema_id not in state.schemas:
            raise _Problem(404, 40403, f"Schema {schema_id} not found")
        return 200, {"schema": state.schemas[schema_id]}  # schemaType is omitted for AVRO, as Confluent does
    if method == "POST" and (match := re.fullmatch(r"/subjects/([^/]+)", path)):
        return 200, _lookup(state, match[1], _schema_text(body))
    if match := re.fullmatch(r"/subjects/([^/]+)/versions", path):
        if method == "POST":
            return 200, {"id": _register(state, match[1], _schema_text(body))}
        return 200, [v.version for v in _versions(state, match[1])]
    if method == "GET" and (match := re.fullmatch(r"/subjects/([^/]+)/versions/(latest|\d+)", path)):
        versions = _versions(state, match[1])
        found = (
            versions[-1]
            if match[2] == "latest"
            else next((v for v in versions if v.version == int(match[2])), None)
        )
        if found is None:
            raise _Problem(404, 40402, f"Version {match[2]} not found.")
        return 200, _describe(state, match[1], found)
    raise _Problem(404, 404, "HTTP 404 Not Found")


def _schema_text(body: bytes) -> str:
    try:
        request = json.loads(body)
        schema_text = request["schema"]
        if request.get("schemaType", "AVRO") != "AVRO":
            raise _Problem(422, 42201, "Only AVRO schemas are supported here")
        parse_schema(json.loads(schema_text))
    except _Problem:
        raise
    except Exception as error:
        raise _Problem(422, 42201, f"Invalid schema: {type(error).__name__}") from None
    return schema_text


def _versions(state: RegistryState, subject: str) -> list[_Version]:
    if subject not in state.subjects:
        raise _Problem(404, 40401, f"Subject '{subject}' not found.")
    return state.subjects[subject]


def _describe(state: RegistryState, subject: str, version: _Version) -> dict[str, Any]:
    return {
        "subject": subject,
        "version": version.version,
        "id": version.schema_id,
        "schema": state.schemas[version.schema_id],
    }


def _lookup(state: RegistryState, subject: str, schema_text: str) -> dict[str, Any]:
    versions = _versions(state, subject)
    schema_id = state.ids.get(_normalised(schema_text))
    for version in versions:
        if version.schema_id == schema_id:
            return _describe(state, subject, version)
    raise _Problem(404, 40403, "Schema not found")


def _register(state: RegistryState, subject: str, schema_text: str) -> int:
    key = _normalised(schema_text)
    schema_id = state.ids.get(key)
    if schema_id is None:
        schema_id = state.ids[key] = len(state.schemas) + 1
        state.schemas[schema_id] = schema_text
    versions = state.subjects.setdefault(subject, [])
    if all(v.schema_id != schema_id for v in versions):
        versions.append(_Version(len(versions) + 1, schema_id))
    return schema_id


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: RegistryState


class RegistryServer:
    """A running in-process registry. `url` for the client, `stop()` to take it down (idempotent)."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)  # port 0: the kernel picks a free port
        self._server.state = RegistryState()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._stopped = False

    @property
    def state(self) -> RegistryState:
        return self._server.state

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._server.state.requests

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()  # returns within one poll interval
        self._server.server_close()  # closes the listening socket: new connections are refused
        self._thread.join(STOP_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            raise RuntimeError(f"registry server thread still running after {STOP_TIMEOUT_SECONDS}s")


@contextmanager
def running_registry() -> Iterator[RegistryServer]:
    server = RegistryServer()
    try:
        yield server
    finally:
        server.stop()
