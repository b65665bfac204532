"""`hub queue read`: a unit's notifications, opened with the unit's key, each shown once per reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import (
    broker_address,
    ensure_embedded_keys,
    fail,
    principal,
)
from hub.settings import Settings

queue_app = typer.Typer(help="Read VLO unit queues.", no_args_is_help=True)


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
    from hub.reference import load_units
    from hub.runtime.dead_letters import audit
    from hub.runtime.queues import record_progress
    from hub.runtime.topics import ensure_topics, retention_of
    from hub.store.engine import open_store

    settings = Settings()
    units = load_units(settings)
    if units.unit_by_code(unit) is None:
        fail(f"unknown unit {unit!r}; known units: {', '.join(u.code for u in units.units)}")
    try:
        group = reader_group(settings.topic_prefix, unit, reader)
    except ValueError as error:
        fail(f"--reader: {error}")
    files = key_file or ([settings.unit_key_file] if settings.unit_key_file else [])
    ensure_embedded_keys(settings)
    directory = KeysDirectory(settings.resolved_keys_dir)
    try:
        keys = {key_id_from_path(path): read_private_key(path, "sealing") for path in files}
    except KeyFileError as error:
        fail(str(error))
    given = {k: v for k, v in keys.items() if isinstance(v, X25519PrivateKey)}
    opener = Opener(given, directory.senders()) if given else directory.opener(directory.unit(unit))
    if not opener.keys:
        fail(
            f"no private key for unit {unit} in {directory.unit(unit)}: give --key-file, or set HUB_UNIT_KEY_FILE"
        )
    if not opener.senders:
        fail(f"no hub public key in {directory.hub}: it tells the hub's notifications from anyone else's")
    topic = settings.unit_topic(unit)
    address = broker_address(settings)
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
            # Kept in the case store too, so a broker that loses its topics can be given it back
            # (hub/runtime/queues.py).
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
        fail(
            f"cannot read {topic} from the broker at {address} ({type(error).__name__}); is the hub running?"
        )
    # Reading a queue reads victims' names: audited under the key that opened them, refused attempts too.
    target = f"unit {unit} reader {reader or unit}" + (f"; refused: {refused}" if refused else "")
    if engine is not None:
        try:
            audit(engine, principal(None, opener.keys), "queue.read", target, shown)
        except Exception as error:
            typer.echo(f"hub: this read is not recorded ({type(error).__name__})", err=True)
    if refused is not None:
        fail(f"unit {unit}'s queue holds a notification {refused}", 1)
