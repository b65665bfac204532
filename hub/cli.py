"""The `hub` command: run the hub, publish agency events, read a unit's queue."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict, Unpack

import typer

from hub.console.cli import demo_operators, operators_app
from hub.settings import AGENCY_SOURCES, BROKER_ADDRESS_FILE, Settings

app = typer.Typer(
    help="The victim contact integration hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
queue_app = typer.Typer(help="Read VLO unit queues.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
outbound_app = typer.Typer(
    help="Read what the hub writes for other agencies (outbound.<agency>).", no_args_is_help=True
)
app.add_typer(outbound_app, name="outbound")
schemas_app = typer.Typer(help="The Avro schemas agencies publish against.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(operators_app, name="operators")

WORKER_STOP_SECONDS = 8.0
HEALTH_WAIT_SECONDS = 90.0
DRAIN_SECONDS = 10.0  # longest `hub up` lets the worker apply what agencies published before the broker stops


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"hub: {message}", err=True)
    raise typer.Exit(code)


def _broker(settings: Settings) -> str:
    try:
        return settings.resolved_broker()
    except RuntimeError as error:
        _fail(str(error))
        raise


@app.command()
def worker() -> None:
    """Run a stream worker against HUB_BROKER and HUB_DATABASE_URL, until SIGINT or SIGTERM."""
    from hub.errors import DataKeysMissing, MissingKeys
    from hub.worker import run_worker

    settings = Settings()
    _broker(settings)
    _embedded_keys(settings)
    try:
        run_worker(settings)
    except (MissingKeys, DataKeysMissing) as error:
        _fail(f"cannot start: {error}. Create keys with `hub keys new` (README, Security).")


@app.command()
def up(demo: Annotated[bool, typer.Option(help="Also publish a small realistic scenario.")] = False) -> None:
    """Start the embedded broker, database, worker and web server in the foreground (Ctrl-C stops all)."""
    from hub.broker import EmbeddedBroker
    from hub.processes import CONFIGURATION_ERROR, RestartPolicy, became_healthy, spawn, stop

    settings = Settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "hub.lock", "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _fail(f"another `hub up` is running with the data directory {data_dir}; stop it or set HUB_DATA_DIR")
    address_file = data_dir / BROKER_ADDRESS_FILE
    stopping = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from hub.protection import embedded_keys

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
            # with no topics: what the case store knows of the queues is put back (hub/queues.py).
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
    from hub.lanes import unapplied

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


def _embedded_keys(settings: Settings) -> None:
    """Demo keys for a fresh embedded data directory (hub/protection.py), said on standard error when made."""
    from hub.protection import embedded_keys

    made = embedded_keys(settings)
    if made:
        where = settings.resolved_keys_dir.resolve()
        typer.echo(
            f"hub: made {len(made)} demo key pair(s) in {where} (set HUB_KEYS_DIR for real keys)", err=True
        )


def _signers(settings: Settings, agencies: list[str]) -> dict[str, Any]:
    """Each agency's signing key: HUB_SIGNING_KEY_FILE for a single agency, else its newest in the keys dir."""
    from connectors.keys import KeyFileError, KeysDirectory, key_id_from_path, read_private_key
    from connectors.signatures import RecordSigner, signer_for

    try:
        if settings.signing_key_file and len(agencies) == 1:
            path = settings.signing_key_file
            key = read_private_key(path, "signing")
            return {agencies[0]: RecordSigner(agencies[0], key_id_from_path(path), key)}  # type: ignore[arg-type]
        keys = KeysDirectory(settings.resolved_keys_dir)
        return {agency: signer_for(keys, agency) for agency in agencies}
    except KeyFileError as error:
        _fail(str(error))
        raise


def _publisher(address: str, settings: Settings, signers: dict[str, Any]) -> Any:
    from connectors.publisher import AgencyPublisher

    return AgencyPublisher(
        address,
        signers=signers,
        registry_url=settings.schema_registry_url,
        client_options=settings.kafka_client_options(),
    )


def _publish_demo(address: str, settings: Settings) -> None:
    from connectors.publisher import event_from_json
    from hub.demo import demo_scenario

    signers = _signers(settings, list(AGENCY_SOURCES))

    async def publish() -> None:
        async with _publisher(address, settings, signers) as publisher:
            for source, data in demo_scenario(datetime.now(UTC).date()):
                event = event_from_json(data, source, datetime.now(UTC))
                await publisher.publish(settings.topic_for(source, event.envelope.event_type), [event])
                typer.echo(f"demo       published {event.envelope.event_type} from {source}")

    asyncio.run(publish())
    typer.echo("demo       read it with: hub queue read --unit YH --from-beginning")


@app.command()
def publish(
    source: Annotated[str, typer.Option(help=f"Publishing agency: {', '.join(AGENCY_SOURCES)}.")],
    file: Annotated[Path | None, typer.Argument(help="JSON Lines file; standard input when omitted.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Publish the valid lines even if some are invalid.")
    ] = False,
) -> None:
    """Validate, encode and publish agency events (one JSON object per line) to the source's inbound topic."""
    from connectors.avro import hub_codec
    from connectors.publisher import event_from_json
    from hub.topics import ensure_topics, retention_of
    from schemas import event_schemas
    from schemas.validation import InvalidEvent

    if source not in AGENCY_SOURCES:
        _fail(f"unknown source {source!r}; expected one of {', '.join(AGENCY_SOURCES)}")
    settings = Settings()
    text = file.read_text(encoding="utf-8") if file else sys.stdin.read()
    codec = hub_codec()
    now = datetime.now(UTC)
    events, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = event_from_json(json.loads(line), source, now)
            size = len(codec.encode(event_schemas()[event.envelope.event_type], event.model_dump()))
            if size > settings.max_message_bytes:
                errors.append(
                    f"line {number}: encoded event is {size} bytes, over the {settings.max_message_bytes}-byte limit"
                )
                continue
            events.append((number, event))
        except json.JSONDecodeError as error:
            errors.append(f"line {number}: not valid JSON ({error.msg} at column {error.colno})")
        except InvalidEvent as error:
            errors.append(f"line {number}: {error}")
    for message in errors:
        typer.echo(message, err=True)
    if errors and not skip_invalid:
        _fail(
            f"{len(errors)} invalid line(s); nothing published (use --skip-invalid to publish the valid ones)",
            1,
        )
    address = _broker(settings)
    _embedded_keys(settings)
    signers = _signers(settings, [source])
    # Urgent event types go to the source's urgent lane, the rest to its events topic, each in the file's order.
    topics = [settings.topic_for(source, event.envelope.event_type) for _, event in events]

    async def send() -> list[Any]:
        await ensure_topics(
            address,
            sorted(set(topics)),
            settings.topic_partitions,
            client_options=settings.kafka_client_options(),
            retention=retention_of(settings),
        )
        results: list[Any] = [None] * len(events)
        async with _publisher(address, settings, signers) as publisher:
            for lane in sorted(set(topics)):
                indexes = [i for i, topic in enumerate(topics) if topic == lane]
                published = await publisher.publish(lane, [events[i][1] for i in indexes])
                for i, result in zip(indexes, published, strict=True):
                    results[i] = result
        return results

    results = asyncio.run(send())
    for (number, _), topic, result in zip(events, topics, results, strict=True):
        typer.echo(
            json.dumps(
                {
                    "line": number,
                    "event_id": result.event_id,
                    "event_type": result.event_type,
                    "topic": topic,
                    "partition": result.partition,
                    "offset": result.offset,
                }
            )
        )
    lanes = ", ".join(sorted(set(topics))) or settings.inbound_topic(source)
    typer.echo(
        f"published {len(results)} event(s) to {lanes}; {len(errors)} invalid line(s) skipped", err=True
    )
    if errors:
        raise typer.Exit(1)


@queue_app.command("read")
def queue_read(
    unit: Annotated[str, typer.Option(help="Unit code, for example YH.")],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest notification.")] = False,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds with nothing new.")] = 5.0,
    follow: Annotated[bool, typer.Option(help="Keep reading until interrupted.")] = False,
    reader: Annotated[
        str | None,
        typer.Option(
            help="A reader within the unit: each reader is shown each notification once (default: the unit's)."
        ),
    ] = None,
    key_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="The unit's private key (repeat for older keys). Default: HUB_UNIT_KEY_FILE, else the "
            "unit's keys in the keys directory."
        ),
    ] = None,
) -> None:
    """Print a unit's notifications as JSON Lines, one per notification_id, opened with the unit's key.

    Without --from-beginning, shows what this reader has not been shown yet (all of it the first time)."""
    from aiokafka.errors import KafkaError
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from connectors.keys import KeyFileError, KeysDirectory, key_id_from_path, read_private_key
    from connectors.queue_reader import read_queue, reader_group
    from connectors.sealing import Opener, SealedRecordError
    from hub.dead_letters import audit
    from hub.queues import record_progress
    from hub.reference import load_units
    from hub.store.repository import open_store
    from hub.topics import ensure_topics, retention_of

    settings = Settings()
    units = load_units(settings)
    if units.unit_by_code(unit) is None:
        _fail(f"unknown unit {unit!r}; known units: {', '.join(u.code for u in units.units)}")
    try:
        group = reader_group(settings.topic_prefix, unit, reader)
    except ValueError as error:
        _fail(f"--reader: {error}")
    files = key_file or ([settings.unit_key_file] if settings.unit_key_file else [])
    _embedded_keys(settings)
    directory = KeysDirectory(settings.resolved_keys_dir)
    try:
        keys = {key_id_from_path(path): read_private_key(path, "sealing") for path in files}
    except KeyFileError as error:
        _fail(str(error))
    given = {k: v for k, v in keys.items() if isinstance(v, X25519PrivateKey)}
    opener = Opener(given, directory.senders()) if given else directory.opener(directory.unit(unit))
    if not opener.keys:
        _fail(
            f"no private key for unit {unit} in {directory.unit(unit)}: give --key-file, or set HUB_UNIT_KEY_FILE"
        )
    if not opener.senders:
        _fail(f"no hub public key in {directory.hub}: it tells the hub's notifications from anyone else's")
    topic = settings.unit_topic(unit)
    address = _broker(settings)
    # The case store records the read (audit, progress); a unit must still be able to read its queue while the
    # database is away, so then the read goes on, said to be unrecorded.
    try:
        engine = open_store(settings)
    except Exception as error:
        engine = None
        typer.echo(
            f"hub: this read is not recorded: the case store is unreachable ({type(error).__name__})",
            err=True,
        )

    def keep_progress(read_up_to: dict[int, str]) -> None:
        if engine is not None:
            with contextlib.suppress(Exception):  # progress on the broker is committed either way
                record_progress(engine, group, topic, read_up_to)

    shown = 0

    async def read() -> None:
        nonlocal shown
        await ensure_topics(
            address,
            [topic],
            settings.topic_partitions,
            client_options=settings.kafka_client_options(),
            retention=retention_of(settings),
        )
        async for notification in read_queue(
            address,
            topic,
            opener=opener,
            from_beginning=from_beginning,
            reader=group,
            idle_timeout=timeout,
            follow=follow,
            client_options=settings.kafka_client_options(),
            on_forged=lambda where: typer.echo(f"hub: not shown, not sealed by the hub: {where}", err=True),
            # Kept in the case store too, so a broker that loses its topics can be given it back (hub/queues.py).
            on_progress=keep_progress,
        ):
            typer.echo(json.dumps(notification, ensure_ascii=False))
            shown += 1

    refused = None
    try:
        with contextlib.suppress(KeyboardInterrupt):  # --follow ends with Ctrl-C
            asyncio.run(read())
    except SealedRecordError as error:
        refused = error
    except KafkaError as error:
        _fail(
            f"cannot read {topic} from the broker at {address} ({type(error).__name__}); is the hub running?"
        )
    # Reading a queue reads victims' names: audited under the key that opened them, refused attempts too.
    target = f"unit {unit} reader {reader or unit}" + (f"; refused: {refused}" if refused else "")
    if engine is not None:
        try:
            audit(engine, _principal(None, opener.keys), "queue.read", target, shown)
        except Exception as error:
            typer.echo(f"hub: this read is not recorded ({type(error).__name__})", err=True)
    if refused is not None:
        _fail(f"unit {unit}'s queue holds a notification {refused}", 1)


@outbound_app.command("read")
def outbound_read(
    agency: Annotated[str, typer.Option(help="The receiving agency: probation, parole-board or prison.")],
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds with nothing new.")] = 5.0,
    key_file: Annotated[
        list[Path] | None,
        typer.Option(
            help="The agency's private key (repeat for older keys). Default: its keys in the keys directory."
        ),
    ] = None,
) -> None:
    """Print every record on an agency's outbound topic as JSON Lines, one per record_id, opened with the agency's
    key: forwarded licence condition requests, scheme flags (docs/domain.md section 8)."""
    from aiokafka.errors import KafkaError
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from connectors.keys import KeyFileError, KeysDirectory, key_id_from_path, read_private_key
    from connectors.queue_reader import outbound_decoder, read_queue
    from connectors.sealing import Opener, SealedRecordError
    from hub.topics import ensure_topics, retention_of
    from schemas import OUTBOUND_RECIPIENTS

    if agency not in OUTBOUND_RECIPIENTS:
        _fail(f"unknown agency {agency!r}; the hub writes for {', '.join(OUTBOUND_RECIPIENTS)}")
    settings = Settings()
    _embedded_keys(settings)
    directory = KeysDirectory(settings.resolved_keys_dir)
    try:
        keys = {key_id_from_path(path): read_private_key(path, "sealing") for path in key_file or []}
    except KeyFileError as error:
        _fail(str(error))
    given = {k: v for k, v in keys.items() if isinstance(v, X25519PrivateKey)}
    opener = Opener(given, directory.senders()) if given else directory.opener(directory.recipient(agency))
    if not opener.keys:
        _fail(f"no private key for {agency} in {directory.recipient(agency)}: give --key-file")
    topic = settings.outbound_topic(agency)
    address = _broker(settings)

    async def read() -> None:
        await ensure_topics(
            address,
            [topic],
            settings.topic_partitions,
            client_options=settings.kafka_client_options(),
            retention=retention_of(settings),
        )
        async for record in read_queue(
            address,
            topic,
            opener=opener,
            from_beginning=True,
            idle_timeout=timeout,
            client_options=settings.kafka_client_options(),
            on_forged=lambda where: typer.echo(f"hub: not shown, not sealed by the hub: {where}", err=True),
            decode=outbound_decoder(),
            id_field="record_id",
        ):
            typer.echo(json.dumps(record, ensure_ascii=False))

    try:
        asyncio.run(read())
    except SealedRecordError as error:
        _fail(f"{topic} holds a record {error}", 1)
    except KafkaError as error:
        _fail(
            f"cannot read {topic} from the broker at {address} ({type(error).__name__}); is the hub running?"
        )


keys_app = typer.Typer(
    help="Keys: agencies sign what they publish, notifications and dead letters are sealed (README, Security).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    agency: Annotated[str | None, typer.Option(help="An agency's Ed25519 signing key.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="A unit's X25519 key its notifications are sealed for.")
    ] = None,
    recipient: Annotated[
        str | None,
        typer.Option(help="An agency's X25519 key what the hub writes on outbound.<agency> is sealed for."),
    ] = None,
    operations: Annotated[
        bool,
        typer.Option("--operations", help="The operations key retry and dead-letter records are sealed for."),
    ] = False,
    hub: Annotated[
        bool, typer.Option("--hub", help="The hub's own key: it seals everything as this sender.")
    ] = False,
    data: Annotated[
        bool,
        typer.Option(
            "--data", help="A data key: the case store's encryption at rest (then `hub keys rotate-data`)."
        ),
    ] = False,
) -> None:
    """Make a key pair (or a data key) in the keys directory. The newest key is used from now on; older ones still
    verify and open what was made with them, until you remove them."""
    from connectors.keys import KeysDirectory, write_data_key, write_key_pair
    from hub.reference import load_units
    from schemas import OUTBOUND_RECIPIENTS

    settings = Settings()
    keys = KeysDirectory(settings.resolved_keys_dir)
    if sum((agency is not None, unit is not None, recipient is not None, operations, hub, data)) != 1:
        _fail(
            "name exactly one owner: --agency NAME, --unit CODE, --recipient AGENCY, --operations, --hub or --data"
        )
    if data:
        key_id = write_data_key(keys.data)
        typer.echo(f"data: key {key_id}")
        typer.echo(f"  secret   {keys.data / (key_id + '.key')}  (the hub's processes only)")
        typer.echo(
            "  new values are encrypted under it within a second; `hub keys rotate-data` moves the rest"
        )
        return
    if agency is not None:
        if agency not in AGENCY_SOURCES:
            _fail(f"unknown agency {agency!r}; expected one of {', '.join(AGENCY_SOURCES)}")
        directory, purpose, holder = keys.agency(agency), "signing", f"agency {agency}"
    elif unit is not None:
        if load_units(settings).unit_by_code(unit) is None:
            _fail(f"unknown unit {unit!r}")
        directory, purpose, holder = keys.unit(unit), "sealing", f"unit {unit}"
    elif recipient is not None:
        if recipient not in OUTBOUND_RECIPIENTS:
            _fail(f"unknown recipient {recipient!r}; expected one of {', '.join(OUTBOUND_RECIPIENTS)}")
        directory, purpose, holder = keys.recipient(recipient), "sealing", f"recipient {recipient}"
    elif operations:
        directory, purpose, holder = keys.operations, "sealing", "operations"
    else:
        directory, purpose, holder = keys.hub, "sealing", "the hub"
    key_id = write_key_pair(directory, purpose)  # type: ignore[arg-type]
    typer.echo(f"{holder}: key {key_id}")
    typer.echo(f"  public   {directory / (key_id + '.pub')}  (the hub's copy)")
    typer.echo(f"  private  {directory / (key_id + '.key')}  (for {holder} only; move it there)")


@keys_app.command("list")
def keys_list() -> None:
    """Every key in the keys directory by owner, newest last; `private` where the private key is here too."""
    from connectors.keys import KeysDirectory, key_id_from_path

    keys = KeysDirectory(Settings().resolved_keys_dir)
    owners = sorted(path for path in keys.root.glob("*/*") if path.is_dir())
    for directory in [*owners, keys.operations, keys.hub]:
        ids = sorted({key_id_from_path(path) for path in directory.glob("*.pub")})
        for key_id in ids:
            private = " private" if (directory / f"{key_id}.key").exists() else ""
            newest = " newest" if key_id == ids[-1] else ""
            typer.echo(f"{directory.relative_to(keys.root)}  {key_id}{newest}{private}")
    data_ids = sorted(keys.data_keys())
    for key_id in data_ids:
        typer.echo(f"data  {key_id}{' newest' if key_id == data_ids[-1] else ''} secret")


@keys_app.command("rotate-data")
def keys_rotate_data() -> None:
    """Re-encrypt every value in the case store that is under an older data key (or stored before encryption at
    rest) under the newest one, in small batches; safe while workers run. Then the older data keys may be removed,
    once no backup of the database still needs them."""
    from hub.store.repository import data_keys, open_store
    from hub.store.rotation import rotate_data

    settings = Settings()
    _embedded_keys(settings)
    try:
        keys = data_keys(settings)
        engine = open_store(settings)
        report = rotate_data(engine, keys, say=typer.echo)
    except Exception as error:  # a clear line, not a traceback: the message names files and keys, no data
        _fail(f"rotate-data stopped: {type(error).__name__}: {error}", 1)
        raise
    before = ", ".join(f"{count} under {key}" for key, count in sorted(report.found_under.items())) or "none"
    typer.echo(f"values found: {before}")
    typer.echo(
        f"re-encrypted {sum(report.re_encrypted.values())} value(s) in {report.passes} pass(es) "
        f"({report.changed_meanwhile} rewritten by a worker meanwhile); every value is now under {report.newest_key}"
    )
    older = [key for key in keys.ids if key != report.newest_key]
    if older:
        typer.echo(f"no value needs {', '.join(older)} any more: remove them once no database backup does")


dlq_app = typer.Typer(
    help="Dead letters: what failed, why, and what to do with it. Every command is audited.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")


def _principal(actor: str | None, key_ids: Iterable[str] = ()) -> str:
    """Who acts, for the audit: the login that ran the command (the machine authenticated it), the name given by
    --actor or HUB_OPERATOR beside it, and the ids of the keys that open the victim data it reads."""
    login = getpass.getuser()
    named = actor or os.environ.get("HUB_OPERATOR")
    who = login if not named or named == login else f"{login} (as {named})"
    keys = ", ".join(sorted(key_ids))
    return f"{who} with key {keys}" if keys else who


def _operations_key_ids(settings: Settings) -> list[str]:
    from connectors.keys import KeysDirectory

    keys = KeysDirectory(settings.resolved_keys_dir)
    return sorted(keys.opening_keys(keys.operations))


ActorOption = Annotated[
    str | None,
    typer.Option(help="Your name, recorded beside your login in the audit (default: HUB_OPERATOR)."),
]
SourceFilter = Annotated[str | None, typer.Option(help="Only dead letters from this agency.")]
StageFilter = Annotated[str | None, typer.Option(help="Only this failed stage (ingest, route, ...).")]
ErrorFilter = Annotated[str | None, typer.Option("--error-class", help="Only this error class.")]
SinceFilter = Annotated[
    datetime | None, typer.Option(help="Only those that failed at or after this instant (UTC).")
]
UntilFilter = Annotated[
    datetime | None, typer.Option(help="Only those that failed at or before this instant (UTC).")
]


class _DeadLetterFilters(TypedDict, total=False):
    """The filters of `hub dlq list`, `replay` and `purge`, as the options give them (times may be naive)."""

    source: str | None
    stage: str | None
    error_class: str | None
    since: datetime | None
    until: datetime | None


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _dead_letters(
    settings: Settings, ids: list[str] | None = None, **filters: Unpack[_DeadLetterFilters]
) -> tuple[list[Any], Any]:
    from connectors.keys import KeysDirectory
    from hub.dead_letters import DeadLetterFilter, purged, read_dead_letters
    from hub.store.repository import open_store

    engine = open_store(settings)
    address = _broker(settings)
    _embedded_keys(settings)
    keys = KeysDirectory(settings.resolved_keys_dir)
    opener = keys.opener(keys.operations)
    if not opener.keys:
        _fail(f"no operations private key in {keys.operations}: dead letters are sealed for it")
    letters = asyncio.run(
        read_dead_letters(
            address,
            settings.dead_letter_topic,
            purged(engine),
            opener,
            client_options=settings.kafka_client_options(),
        )
    )
    wanted = DeadLetterFilter(
        source=filters.get("source"),
        stage=filters.get("stage"),
        error_class=filters.get("error_class"),
        since=_utc(filters.get("since")),
        until=_utc(filters.get("until")),
    )
    chosen = [
        letter for letter in letters if wanted.matches(letter, settings) and (not ids or letter.id in ids)
    ]
    if ids:
        missing = sorted(set(ids) - {letter.id for letter in chosen})
        if missing:
            _fail(
                f"no dead letter with id {', '.join(missing)} (ids are partition:offset, see `hub dlq list`)"
            )
    return chosen, engine


@dlq_app.command("list")
def dlq_list(
    source: SourceFilter = None,
    stage: StageFilter = None,
    error_class: ErrorFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    actor: ActorOption = None,
) -> None:
    """Dead letters as JSON Lines: id, source, stage, error class, reason and age. No payloads."""
    from hub.dead_letters import audit

    settings = Settings()
    filters = _DeadLetterFilters(
        source=source, stage=stage, error_class=error_class, since=since, until=until
    )
    letters, engine = _dead_letters(settings, **filters)
    now = datetime.now(UTC)
    for letter in letters:
        typer.echo(json.dumps(letter.summary(settings, now)))
    audit(
        engine,
        _principal(actor, _operations_key_ids(settings)),
        "dlq.list",
        " ".join(f"{k}={v}" for k, v in filters.items() if v) or "all",
        len(letters),
    )


@dlq_app.command("show")
def dlq_show(
    dead_letter_id: Annotated[str, typer.Argument(help="partition:offset")], actor: ActorOption = None
) -> None:
    """One dead letter: its headers and a redacted view of its payload."""
    from connectors.avro import hub_codec
    from connectors.registry import registry_for
    from hub.dead_letters import audit
    from hub.pipeline.redaction import redacted_view

    settings = Settings()
    letters, engine = _dead_letters(settings, [dead_letter_id])
    letter = letters[0]
    codec = hub_codec(registry=registry_for(settings.schema_registry_url))
    shown = {
        **letter.summary(settings, datetime.now(UTC)),
        "headers": {
            name: value.decode("utf-8", "replace")
            for name, value in letter.headers.items()
            if name.startswith("hub.")
        },
        "payload": {"unreadable": letter.unreadable}
        if letter.unreadable
        else redacted_view(codec, letter.value),
    }
    typer.echo(json.dumps(shown, indent=2, default=str))
    audit(engine, _principal(actor, _operations_key_ids(settings)), "dlq.show", dead_letter_id, 1)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids (partition:offset).")] = None,
    all_matching: Annotated[
        bool, typer.Option("--all", help="Every dead letter matching the filters.")
    ] = False,
    source: SourceFilter = None,
    stage: StageFilter = None,
    error_class: ErrorFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    rate: Annotated[float, typer.Option(help="Most replays per second.")] = 50.0,
    actor: ActorOption = None,
) -> None:
    """Republish the original bytes to their original topic, marked as a replay."""
    from hub.dead_letters import audit, replay

    if not ids and not all_matching:
        _fail("name dead letter ids, or --all (with filters) to replay every one that matches")
    settings = Settings()
    filters = _DeadLetterFilters(
        source=source, stage=stage, error_class=error_class, since=since, until=until
    )
    letters, engine = _dead_letters(settings, ids, **filters)
    who = _principal(actor, _operations_key_ids(settings))
    unreadable = [letter.id for letter in letters if letter.unreadable]
    if unreadable:
        _fail(f"dead letters {', '.join(unreadable)} cannot be opened with the operations keys held here")
    sent = asyncio.run(
        replay(_broker(settings), letters, who, rate, client_options=settings.kafka_client_options())
    )
    audit(
        engine,
        who,
        "dlq.replay",
        " ".join(ids or []) or " ".join(f"{k}={v}" for k, v in filters.items() if v) or "all",
        sent,
    )
    typer.echo(f"replayed {sent} dead letter(s)")


@dlq_app.command("purge")
def dlq_purge(
    source: SourceFilter = None,
    stage: StageFilter = None,
    error_class: ErrorFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: ActorOption = None,
) -> None:
    """Hide the matching dead letters from every later list, show and replay (asks first)."""
    from hub.dead_letters import audit, purge

    settings = Settings()
    filters = _DeadLetterFilters(
        source=source, stage=stage, error_class=error_class, since=since, until=until
    )
    letters, engine = _dead_letters(settings, **filters)
    if not letters:
        typer.echo("nothing to purge")
        return
    if not yes and not typer.confirm(
        f"Purge {len(letters)} dead letter(s)? They cannot be replayed afterwards"
    ):
        _fail("not purged", 1)
    count = purge(engine, letters)
    audit(
        engine,
        _principal(actor, _operations_key_ids(settings)),
        "dlq.purge",
        " ".join(f"{k}={v}" for k, v in filters.items() if v) or "all",
        count,
    )
    typer.echo(f"purged {count} dead letter(s)")


parked_app = typer.Typer(help="Events waiting for a case or identifier link.", no_args_is_help=True)
app.add_typer(parked_app, name="parked")


@parked_app.command("list")
def parked_list(
    older_than: Annotated[
        float, typer.Option(help="Only events parked at least this many minutes ago.")
    ] = 0.0,
) -> None:
    """Parked events as JSON Lines: what they are, who sent them, how long they have waited, what they wait on."""
    from connectors.avro import hub_codec
    from hub.pipeline import Pipeline
    from hub.reference import load_units
    from hub.store.repository import open_store

    settings = Settings()
    pipeline = Pipeline(settings, open_store(settings), hub_codec(), load_units(settings))
    now = pipeline.clock()
    for parked in pipeline.parked_events(older_than * 60):
        typer.echo(
            json.dumps(
                {
                    "event_id": parked.event_id,
                    "event_type": parked.event_type,
                    "source": parked.source,
                    "parked_at": parked.parked_at.isoformat(),
                    "waiting_minutes": round((now - parked.parked_at).total_seconds() / 60, 1),
                    # Offender and case identifiers only: parked events never show a victim's details.
                    "waiting_for": sorted(
                        {f"{key.kind}={key.value}" for key in parked.keys if key.kind != "person_ref"}
                    ),
                }
            )
        )


victims_app = typer.Typer(help="Victims' personal data in the hub (README, Erasure).", no_args_is_help=True)
app.add_typer(victims_app, name="victims")


@victims_app.command("erase")
def victims_erase(
    case_ref: Annotated[str, typer.Option(help="The victim's case (court case reference).")],
    person_ref: Annotated[str, typer.Option(help="The victim's person reference on that case.")],
    reason: Annotated[str, typer.Option(help="Why (audited, and told to the unit): no personal data in it.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: ActorOption = None,
) -> None:
    """Erase the hub's copy of one victim's personal data and tell their unit (admin: the operations key).
    Prints counts only; running it again changes nothing."""
    from connectors.avro import hub_codec
    from connectors.keys import KeysDirectory
    from connectors.registry import registry_for
    from hub.erasure import erase_victim, record_refusal
    from hub.errors import DataKeysMissing, VictimNotFound
    from hub.store.repository import make_engine, open_store

    settings = Settings()
    _embedded_keys(settings)
    keys = KeysDirectory(settings.resolved_keys_dir)
    key_ids = _operations_key_ids(settings)
    who = _principal(actor, key_ids)
    if not key_ids:
        # The audit table holds nothing encrypted: a refusal is recorded without the data keys.
        engine = make_engine(settings.resolved_database_url, None, settings.database_connect_args)
        record_refusal(engine, case_ref, person_ref, reason, who, datetime.now(UTC))
        _fail(f"erasing is for admins, who hold the operations private key (none in {keys.operations})")
    if not yes and not typer.confirm(f"Erase person {person_ref} on case {case_ref}? It cannot be undone"):
        _fail("not erased", 1)
    try:
        engine = open_store(settings)
        done = erase_victim(
            engine,
            case_ref,
            person_ref,
            reason,
            who,
            datetime.now(UTC),
            settings=settings,
            codec=hub_codec(registry=registry_for(settings.schema_registry_url)),
            dead_letter_opener=keys.opener(keys.operations),
        )
    except VictimNotFound as error:
        _fail(f"{error}: nothing erased", 1)
        raise
    except (ValueError, DataKeysMissing) as error:
        _fail(f"{error}; nothing erased")
        raise
    if done.already_erased:
        when = done.erased_at.isoformat()
        typer.echo(f"person {person_ref} on case {case_ref} was already erased at {when}; nothing changed")
        return
    typer.echo(f"erased person {person_ref} on case {case_ref} at {done.erased_at.isoformat()}")
    typer.echo(
        f"  notifications: {done.notifications_cleared} stored bodies removed, "
        f"{done.notifications_withdrawn} not yet sent withdrawn"
    )
    typer.echo(
        f"  timers stopped: {done.timers_stopped}; parked events deleted: {done.parked_deleted}; "
        f"dead letters purged: {done.dead_letters_purged}"
    )
    typer.echo(
        f"  licence condition requests cleared: {done.requests_cleared}; "
        f"forwarded requests' bodies removed: {done.outbound_dropped}"
    )
    if done.scheme_flag is not None:
        typer.echo(f"  the case's scheme flag is now {'in' if done.scheme_flag else 'out of'} the scheme")
    typer.echo(
        f"  unit {done.unit_code} is told by record_only notification {done.notification_id} "
        "(on its queue with the worker's next outbox sweep)"
    )


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a schema can no longer read data written with one of its released versions."""
    from schemas.compatibility import check, released_versions

    problems = check()
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        _fail(f"{len(problems)} backward-incompatible schema change(s)", 1)
    typer.echo(f"schemas compatible with {len(released_versions())} released version(s)")


@schemas_app.command("release")
def schemas_release() -> None:
    """Record the current version of every changed schema as released (after `hub schemas check` passes)."""
    from schemas.compatibility import check, release

    if problems := check():
        for problem in problems:
            typer.echo(problem, err=True)
        _fail("refusing to release incompatible schemas", 1)
    for version in release():
        typer.echo(f"released {version.name} v{version.version}")


# `hub bench` lives in its own module (its options and its report are long); hub.bench imports little at load.
from hub.bench import bench_command  # noqa: E402

app.command("bench")(bench_command)

# `hub simulate` lives beside the traffic it sends (hub/simulate.py); it imports little at load.
from hub.simulate import simulate_command, start_demo_traffic, stop_demo_traffic  # noqa: E402

app.command("simulate")(simulate_command)

# `hub report` (coverage, ...) lives in hub/reports/; it imports little at load.
from hub.reports.cli import report_app  # noqa: E402

app.add_typer(report_app, name="report")

# `hub retention` lives beside the schedule it runs (hub/retention_cli.py); it imports little at load.
from hub.retention_cli import retention_app  # noqa: E402

app.add_typer(retention_app, name="retention")


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as error:  # HUB_* settings that do not hold: say which and why, not a traceback
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            named = f"HUB_{where.upper()}: " if where else ""
            typer.echo(f"hub: {named}{problem['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
