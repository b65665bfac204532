"""Running the hub: `hub worker` (one stream worker) and `hub up` (the embedded broker, database, worker and web
server in the foreground, with a demo scenario and simulated traffic on `--demo`)."""

from __future__ import annotations

import asyncio
import fcntl
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from hub.cli.common import (
    agency_publisher,
    agency_signers,
    broker_address,
    ensure_embedded_keys,
    fail,
)
from hub.console.cli import demo_operators
from hub.settings import AGENCY_SOURCES, BROKER_ADDRESS_FILE, Settings
from hub.tools.simulate import start_demo_traffic, stop_demo_traffic

WORKER_STOP_SECONDS = 8.0
HEALTH_WAIT_SECONDS = 90.0
DRAIN_SECONDS = 10.0  # longest `hub up` lets the worker apply what agencies published before the broker stops


def worker() -> None:
    """Run a stream worker against HUB_BROKER and HUB_DATABASE_URL, until SIGINT or SIGTERM."""
    from hub.errors import DataKeysMissing, MissingKeys
    from hub.runtime.worker import run_worker

    settings = Settings()
    broker_address(settings)
    ensure_embedded_keys(settings)
    try:
        run_worker(settings)
    except (MissingKeys, DataKeysMissing) as error:
        fail(f"cannot start: {error}. Create keys with `hub keys new` (README, Security).")


def up(demo: Annotated[bool, typer.Option(help="Also publish a small realistic scenario.")] = False) -> None:
    """Start the embedded broker, database, worker and web server in the foreground (Ctrl-C stops all)."""
    from hub.runtime.broker import EmbeddedBroker
    from hub.runtime.processes import CONFIGURATION_ERROR, RestartPolicy, became_healthy, spawn, stop

    settings = Settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "hub.lock", "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fail(f"another `hub up` is running with the data directory {data_dir}; stop it or set HUB_DATA_DIR")
    address_file = data_dir / BROKER_ADDRESS_FILE
    stopping = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from hub.runtime.protection import embedded_keys

    made = embedded_keys(settings)
    typer.echo(f"keys       {settings.resolved_keys_dir.resolve()} ({len(made)} demo key pair(s) made)")
    broker = None
    if settings.broker:
        address = settings.broker
        typer.echo(f"broker     {address} (HUB_BROKER)")
    else:
        broker = EmbeddedBroker(data_dir / "broker.log")
        address = broker.start()
        address_file.write_text(address)
        typer.echo(f"broker     {address} (embedded Tansu, memory storage; log {data_dir / 'broker.log'})")
    worker_process = None
    traffic = None  # --demo: simulated agency traffic, stopped before the worker and broker
    try:
        typer.echo(f"database   {settings.resolved_database_url}")
        worker_env = {
            "HUB_BROKER": address,
            "HUB_DATA_DIR": str(data_dir),
            # The embedded broker is plaintext on loopback (Tansu's memory storage keeps no users), and starts
            # with no topics: what the case store knows of the queues is put back (hub/runtime/queues.py).
            **(
                {}
                if settings.broker
                else {"HUB_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "HUB_RESTORE_LOST_QUEUES": "true"}
            ),
        }
        command = [sys.executable, "-m", "hub.cli", "worker"]
        worker_process = spawn(command, data_dir / "worker.log", env=worker_env)
        typer.echo(f"worker     pid {worker_process.pid} (log {data_dir / 'worker.log'})")
        web = f"http://{settings.web_host}:{settings.web_port}"
        typer.echo(f"web        {web}/health  {web}/metrics")
        typer.echo(f"console    {web}/ (operations console; `hub operators add` creates accounts)")
        if became_healthy(f"{web}/health", worker_process, HEALTH_WAIT_SECONDS, lambda: stopping):
            typer.echo("ready      the worker is consuming; Ctrl-C stops everything")
            if demo:
                demo_operators(settings)
                try:
                    _publish_demo(address, settings)
                except Exception as error:  # the hub keeps running; the demo is a convenience
                    typer.echo(f"demo       failed: {type(error).__name__}: {error}", err=True)
                traffic = start_demo_traffic(address, settings, typer.echo)
        # A worker that dies is started again, so one crash does not take the broker and its queues with it.
        restarts = RestartPolicy()
        while not stopping:
            if worker_process.poll() is None:
                time.sleep(0.2)
                continue
            code = worker_process.returncode
            delay = restarts.after_crash(time.monotonic(), code)
            log_file = data_dir / "worker.log"
            if delay is None:
                why = "its configuration" if code == CONFIGURATION_ERROR else "repeated crashes"
                typer.echo(f"worker exited with code {code}; not restarted ({why}); see {log_file}", err=True)
                break
            typer.echo(
                f"worker exited with code {code}; restarting in {delay:.0f}s (see {log_file})", err=True
            )
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if not stopping:
                worker_process = spawn(command, log_file, env=worker_env)
                typer.echo(f"worker     pid {worker_process.pid} (restarted)")
    finally:
        typer.echo("stopping")
        stop_demo_traffic(traffic, typer.echo)
        if broker is not None and worker_process is not None and worker_process.poll() is None:
            _let_the_worker_drain(address, settings, worker_process)
        if worker_process is not None:
            stop(worker_process, WORKER_STOP_SECONDS)
        if broker is not None:
            broker.stop()
            address_file.unlink(missing_ok=True)
        typer.echo("stopped")


def _let_the_worker_drain(address: str, settings: Settings, worker_process: Any) -> None:
    """The embedded broker keeps agency events in memory only: before it stops, the worker applies what agencies
    have published (at most DRAIN_SECONDS; a second Ctrl-C stops at once). What it applied is in the case store,
    and the queues, the retry ladder and the dead letters are put back from there at the next start."""
    from hub.runtime.lanes import unapplied

    hurry = False

    def stop_now(signum: int, _frame: Any) -> None:
        nonlocal hurry
        hurry = True

    signal.signal(signal.SIGINT, stop_now)
    deadline = time.monotonic() + DRAIN_SECONDS
    said = False
    waiting = 0
    while not hurry and worker_process.poll() is None and time.monotonic() < deadline:
        try:
            embedded = settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT"})
            waiting = asyncio.run(asyncio.wait_for(unapplied(address, embedded), timeout=5))
        except Exception:  # the broker cannot say: stopping goes on
            return
        if waiting == 0:
            return
        if not said:
            typer.echo(f"draining   {waiting} agency event(s) not applied yet (Ctrl-C again: stop now)")
            said = True
        time.sleep(0.5)
    if waiting:
        typer.echo(
            f"lost       {waiting} agency event(s) not applied: the embedded broker keeps them in memory only"
        )


def _publish_demo(address: str, settings: Settings) -> None:
    from connectors.publisher import event_from_json
    from hub.tools.demo import demo_scenario

    signers = agency_signers(settings, list(AGENCY_SOURCES))

    async def publish() -> None:
        async with agency_publisher(address, settings, signers) as publisher:
            for source, data in demo_scenario(datetime.now(UTC).date()):
                event = event_from_json(data, source, datetime.now(UTC))
                await publisher.publish(settings.topic_for(source, event.envelope.event_type), [event])
                typer.echo(f"demo       published {event.envelope.event_type} from {source}")

    asyncio.run(publish())
    typer.echo("demo       read it with: hub queue read --unit YH --from-beginning")
