"""What several command groups share: failing with a clear line, the broker and the keys of an embedded
deployment, agencies' signers and publisher, and who acts, for the audit."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from typing import Annotated, Any

import typer

from hub.settings import Settings


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"hub: {message}", err=True)
    raise typer.Exit(code)


def broker_address(settings: Settings) -> str:
    try:
        return settings.resolved_broker()
    except RuntimeError as error:
        fail(str(error))
        raise


def ensure_embedded_keys(settings: Settings) -> None:
    """Demo keys for a fresh embedded data directory (hub/runtime/protection.py), said on standard error when
    made."""
    from hub.runtime.protection import embedded_keys

    made = embedded_keys(settings)
    if made:
        where = settings.resolved_keys_dir.resolve()
        typer.echo(
            f"hub: made {len(made)} demo key pair(s) in {where} (set HUB_KEYS_DIR for real keys)", err=True
        )


def agency_signers(settings: Settings, agencies: list[str]) -> dict[str, Any]:
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
        fail(str(error))
        raise


def agency_publisher(address: str, settings: Settings, signers: dict[str, Any]) -> Any:
    from connectors.publisher import AgencyPublisher

    return AgencyPublisher(
        address,
        signers=signers,
        registry_url=settings.schema_registry_url,
        client_options=settings.kafka_client_options(),
    )


def principal(actor: str | None, key_ids: Iterable[str] = ()) -> str:
    """Who acts, for the audit: the login that ran the command (the machine authenticated it), the name given by
    --actor or HUB_OPERATOR beside it, and the ids of the keys that open the victim data it reads."""
    login = getpass.getuser()
    named = actor or os.environ.get("HUB_OPERATOR")
    who = login if not named or named == login else f"{login} (as {named})"
    keys = ", ".join(sorted(key_ids))
    return f"{who} with key {keys}" if keys else who


def operations_key_ids(settings: Settings) -> list[str]:
    from connectors.keys import KeysDirectory

    keys = KeysDirectory(settings.resolved_keys_dir)
    return sorted(keys.opening_keys(keys.operations))


ActorOption = Annotated[
    str | None,
    typer.Option(help="Your name, recorded beside your login in the audit (default: HUB_OPERATOR)."),
]
