"""`hub parked list`: events waiting for a case or identifier link, without a victim's details."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hub.settings import Settings

parked_app = typer.Typer(help="Events waiting for a case or identifier link.", no_args_is_help=True)


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
    from hub.store.engine import open_store

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
