"""`hub keys`: the key pairs agencies sign with and records are sealed for, and the case store's data keys."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import (
    ensure_embedded_keys,
    fail,
)
from hub.settings import AGENCY_SOURCES, Settings

keys_app = typer.Typer(
    help="Keys: agencies sign what they publish, notifications and dead letters are sealed (README, Security).",
    no_args_is_help=True,
)


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
        fail(
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
            fail(f"unknown agency {agency!r}; expected one of {', '.join(AGENCY_SOURCES)}")
        directory, purpose, holder = keys.agency(agency), "signing", f"agency {agency}"
    elif unit is not None:
        if load_units(settings).unit_by_code(unit) is None:
            fail(f"unknown unit {unit!r}")
        directory, purpose, holder = keys.unit(unit), "sealing", f"unit {unit}"
    elif recipient is not None:
        if recipient not in OUTBOUND_RECIPIENTS:
            fail(f"unknown recipient {recipient!r}; expected one of {', '.join(OUTBOUND_RECIPIENTS)}")
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
    from hub.store.engine import data_keys, open_store
    from hub.store.rotation import rotate_data

    settings = Settings()
    ensure_embedded_keys(settings)
    try:
        keys = data_keys(settings)
        engine = open_store(settings)
        report = rotate_data(engine, keys, say=typer.echo)
    except Exception as error:  # a clear line, not a traceback: the message names files and keys, no data
        fail(f"rotate-data stopped: {type(error).__name__}: {error}", 1)
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
