"""Real parts for integration tests: one Tansu broker per session, SQLite and PostgreSQL, real workers.

Every test that starts a worker gets its own topic prefix and consumer group, so tests share the broker
without seeing each other's messages. Every process started here is stopped by its id, and every wait has a
timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.sealing import Opener
from connectors.signatures import RecordSigner, signer_for
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.runtime.broker import EmbeddedBroker
from hub.runtime.processes import free_port, spawn, stop
from hub.settings import AGENCY_SOURCES, Settings
from hub.store.engine import make_engine
from tests.data_keys import data_keys_in
from tests.integration.waiting import wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
HUB = [sys.executable, "-m", "hub.cli"]
POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
COMMAND_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    embedded = EmbeddedBroker(tmp_path_factory.mktemp("broker") / "broker.log")
    embedded.start()
    yield embedded.address
    embedded.stop()


def _postgres_database() -> Iterator[str]:
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is required in CI and is not reachable: {error}") from error
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(error).__name__}")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def pipeline(database_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    """The worker's pipeline on the test's database, with no broker: what it hands over is the test's to check."""
    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="x.")
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    yield Pipeline(settings, engine, hub_codec(), load_units(settings))
    engine.dispose()


@dataclass
class Hub:
    """One isolated hub deployment on the shared broker: its environment and CLI."""

    env: dict[str, str]
    data_dir: Path

    @property
    def prefix(self) -> str:
        return self.env["HUB_TOPIC_PREFIX"]

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['HUB_WEB_PORT']}"

    def run(self, *args: str, input: str | None = None, timeout: float = COMMAND_TIMEOUT_SECONDS):
        return subprocess.run(
            [*HUB, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            cwd=ROOT,
        )

    def publish(self, source: str, events: list[dict], *extra: str) -> subprocess.CompletedProcess[str]:
        lines = "\n".join(json.dumps(event) for event in events) + "\n"
        return self.run("publish", "--source", source, *extra, input=lines)

    @property
    def keys(self) -> KeysDirectory:
        return KeysDirectory(Path(self.env["HUB_KEYS_DIR"]))

    def signer(self, agency: str) -> RecordSigner:
        return signer_for(self.keys, agency)

    def signers(self) -> dict[str, RecordSigner]:
        """Every agency's signing key, as `hub simulate` holds them."""
        return {agency: self.signer(agency) for agency in AGENCY_SOURCES}

    def opener(self, unit: str | None = None) -> Opener:
        """Opens what is sealed for a unit, or (None) for operations."""
        return self.keys.opener(self.keys.unit(unit) if unit else self.keys.operations)

    def read_queue(self, unit: str, timeout: float = 3.0) -> list[dict]:
        result = self.run("queue", "read", "--unit", unit, "--from-beginning", "--timeout", str(timeout))
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def with_keys(directory: Path) -> Path:
    """A keys directory holding every agency's, unit's and the operations team's keys, as `hub up` makes them."""
    units = [unit.code for unit in load_units(Settings()).units]
    KeysDirectory(directory).create_missing(list(AGENCY_SOURCES), units)
    return directory


def new_hub(broker: str, database_url: str, directory: Path) -> Hub:
    tag = uuid.uuid4().hex[:8]
    env = {
        "HUB_KEYS_DIR": str(with_keys(directory / "hub" / "keys")),
        "HUB_BROKER": broker,
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_DIR": str(directory / "hub"),
        "HUB_TOPIC_PREFIX": f"t{tag}.",
        "HUB_APP_ID": f"hub-test-{tag}",
        "HUB_WEB_PORT": str(free_port()),
        "HUB_SESSION_TIMEOUT_SECONDS": "6",
    }
    return Hub(env=env, data_dir=directory / "hub")


def running_worker(hub: Hub) -> Iterator[subprocess.Popen[bytes]]:
    """A real `hub worker` process, consuming, stopped by its pid at the end."""
    log = hub.data_dir / "worker.log"
    process = spawn([*HUB, "worker"], log, env=hub.env)
    try:
        wait_until_healthy(f"{hub.web}/health", process, log, timeout=90)
        yield process
    finally:
        stop(process, 10)


@pytest.fixture
def hub(broker: str, database_url: str, tmp_path: Path) -> Hub:
    """A hub of its own for one test: its own topics, consumer group and database."""
    return new_hub(broker, database_url, tmp_path)


@pytest.fixture
def cli(broker: str, tmp_path: Path) -> Hub:
    """The CLI on the shared broker with no worker: publishing needs none."""
    return Hub(
        env={
            "HUB_BROKER": broker,
            "HUB_TOPIC_PREFIX": f"cli{uuid.uuid4().hex[:8]}.",
            "HUB_DATA_DIR": str(tmp_path),
            "HUB_KEYS_DIR": str(with_keys(tmp_path / "keys")),
        },
        data_dir=tmp_path,
    )


@pytest.fixture
def worker(hub: Hub) -> Iterator[subprocess.Popen[bytes]]:
    yield from running_worker(hub)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared') / 'hub.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="module")
def shared_hub(broker: str, shared_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """One hub for a whole module: its tests keep apart by using their own cases, offenders and units."""
    return new_hub(broker, shared_database_url, tmp_path_factory.mktemp("shared-hub"))


@pytest.fixture(scope="module")
def shared_worker(shared_hub: Hub) -> Iterator[subprocess.Popen[bytes]]:
    yield from running_worker(shared_hub)
