"""`hub victims erase`: erasure on request of one victim's personal data (hub/store/erasure.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from hub.cli.common import (
    ActorOption,
    ensure_embedded_keys,
    fail,
    operations_key_ids,
    principal,
)
from hub.settings import Settings

victims_app = typer.Typer(help="Victims' personal data in the hub (README, Erasure).", no_args_is_help=True)


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
    from hub.errors import DataKeysMissing, VictimNotFound
    from hub.store.engine import make_engine, open_store
    from hub.store.erasure import erase_victim, record_refusal

    settings = Settings()
    ensure_embedded_keys(settings)
    keys = KeysDirectory(settings.resolved_keys_dir)
    key_ids = operations_key_ids(settings)
    who = principal(actor, key_ids)
    if not key_ids:
        # The audit table holds nothing encrypted: a refusal is recorded without the data keys.
        engine = make_engine(settings.resolved_database_url, None, settings.database_connect_args)
        record_refusal(engine, case_ref, person_ref, reason, who, datetime.now(UTC))
        fail(f"erasing is for admins, who hold the operations private key (none in {keys.operations})")
    if not yes and not typer.confirm(f"Erase person {person_ref} on case {case_ref}? It cannot be undone"):
        fail("not erased", 1)
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
        fail(f"{error}: nothing erased", 1)
        raise
    except (ValueError, DataKeysMissing) as error:
        fail(f"{error}; nothing erased")
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
