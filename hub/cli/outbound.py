"""`hub outbound read`: what the hub writes for another agency, opened with that agency's key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import (
    broker_address,
    ensure_embedded_keys,
    fail,
)
from hub.settings import Settings

outbound_app = typer.Typer(
    help="Read what the hub writes for other agencies (outbound.<agency>).", no_args_is_help=True
)


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
    from hub.runtime.topics import ensure_topics, retention_of
    from schemas import OUTBOUND_RECIPIENTS

    if agency not in OUTBOUND_RECIPIENTS:
        fail(f"unknown agency {agency!r}; the hub writes for {', '.join(OUTBOUND_RECIPIENTS)}")
    settings = Settings()
    ensure_embedded_keys(settings)
    directory = KeysDirectory(settings.resolved_keys_dir)
    try:
        keys = {key_id_from_path(path): read_private_key(path, "sealing") for path in key_file or []}
    except KeyFileError as error:
        fail(str(error))
    given = {k: v for k, v in keys.items() if isinstance(v, X25519PrivateKey)}
    opener = Opener(given, directory.senders()) if given else directory.opener(directory.recipient(agency))
    if not opener.keys:
        fail(f"no private key for {agency} in {directory.recipient(agency)}: give --key-file")
    topic = settings.outbound_topic(agency)
    address = broker_address(settings)

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
        fail(f"{topic} holds a record {error}", 1)
    except KafkaError as error:
        fail(
            f"cannot read {topic} from the broker at {address} ({type(error).__name__}); is the hub running?"
        )
