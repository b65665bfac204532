"""`hub publish`: validate, encode, sign and publish agency events from a JSON Lines file, as an agency would."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.cli.common import (
    agency_publisher,
    agency_signers,
    broker_address,
    ensure_embedded_keys,
    fail,
)
from hub.settings import AGENCY_SOURCES, Settings


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
    from hub.runtime.topics import ensure_topics, retention_of
    from schemas import event_schemas
    from schemas.validation import InvalidEvent

    if source not in AGENCY_SOURCES:
        fail(f"unknown source {source!r}; expected one of {', '.join(AGENCY_SOURCES)}")
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
        fail(
            f"{len(errors)} invalid line(s); nothing published (use --skip-invalid to publish the valid ones)",
            1,
        )
    address = broker_address(settings)
    ensure_embedded_keys(settings)
    signers = agency_signers(settings, [source])
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
        async with agency_publisher(address, settings, signers) as publisher:
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
