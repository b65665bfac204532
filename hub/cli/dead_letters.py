"""`hub dlq`: dead letters, what failed and why, and replaying or purging them. Every command is audited."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict, Unpack

import typer

from hub.cli.common import (
    ActorOption,
    broker_address,
    ensure_embedded_keys,
    fail,
    operations_key_ids,
    principal,
)
from hub.settings import Settings

dlq_app = typer.Typer(
    help="Dead letters: what failed, why, and what to do with it. Every command is audited.",
    no_args_is_help=True,
)


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
    from hub.runtime.dead_letters import DeadLetterFilter, purged, read_dead_letters
    from hub.store.engine import open_store

    engine = open_store(settings)
    address = broker_address(settings)
    ensure_embedded_keys(settings)
    keys = KeysDirectory(settings.resolved_keys_dir)
    opener = keys.opener(keys.operations)
    if not opener.keys:
        fail(f"no operations private key in {keys.operations}: dead letters are sealed for it")
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
            fail(
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
    from hub.runtime.dead_letters import audit

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
        principal(actor, operations_key_ids(settings)),
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
    from hub.pipeline.redaction import redacted_view
    from hub.runtime.dead_letters import audit

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
    audit(engine, principal(actor, operations_key_ids(settings)), "dlq.show", dead_letter_id, 1)


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
    from hub.runtime.dead_letters import audit, replay

    if not ids and not all_matching:
        fail("name dead letter ids, or --all (with filters) to replay every one that matches")
    settings = Settings()
    filters = _DeadLetterFilters(
        source=source, stage=stage, error_class=error_class, since=since, until=until
    )
    letters, engine = _dead_letters(settings, ids, **filters)
    who = principal(actor, operations_key_ids(settings))
    unreadable = [letter.id for letter in letters if letter.unreadable]
    if unreadable:
        fail(f"dead letters {', '.join(unreadable)} cannot be opened with the operations keys held here")
    sent = asyncio.run(
        replay(broker_address(settings), letters, who, rate, client_options=settings.kafka_client_options())
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
    from hub.runtime.dead_letters import audit, purge

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
        fail("not purged", 1)
    count = purge(engine, letters)
    audit(
        engine,
        principal(actor, operations_key_ids(settings)),
        "dlq.purge",
        " ".join(f"{k}={v}" for k, v in filters.items() if v) or "all",
        count,
    )
    typer.echo(f"purged {count} dead letter(s)")
