"""`hub operators`: who may sign in to the operations console, and with which role. Every change is audited."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.settings import Settings

operators_app = typer.Typer(
    help="Operators of the console at / (viewer: sees it; admin: may also replay and purge dead letters).",
    no_args_is_help=True,
)


def _engine() -> Engine:  # imported late: `hub --help` should not load SQLAlchemy
    from hub.settings import Settings
    from hub.store.engine import open_store

    return open_store(Settings())


def _actor() -> str:
    return os.environ.get("HUB_OPERATOR") or getpass.getuser()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"hub: {message}", err=True)
    raise typer.Exit(code)


@operators_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Username: lower-case letters, digits, '.', '_', '-'.")],
    role: Annotated[str, typer.Option(help="viewer or admin.")] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Reset the role and password of an existing operator.")
    ] = False,
) -> None:
    """Create an operator (asks for the password unless --password-stdin)."""
    from hub.console.operators import add_operator, check_new_operator
    from hub.errors import OperatorError
    from hub.runtime.dead_letters import audit

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            _fail("the passwords differ")
    try:
        check_new_operator(name, role, password)
        engine = _engine()
        created = add_operator(engine, name, role, password, replace=replace)
    except OperatorError as error:
        _fail(str(error))
        return
    if not created:
        _fail(f"operator {name} exists; use --replace to reset its role and password", 1)
    audit(engine, _actor(), "operators.replace" if replace else "operators.add", f"{name} role={role}", 1)
    typer.echo(f"operator {name} ({role}) {'saved' if replace else 'created'}")


@operators_app.command("list")
def list_() -> None:
    """Operators, their roles and when they were created."""
    from hub.console.operators import list_operators

    for username, role, created_at in list_operators(_engine()):
        typer.echo(f"{username}\t{role}\t{created_at.isoformat(timespec='seconds')}")


@operators_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Remove an operator: their sessions stop working within seconds."""
    from hub.console.operators import remove_operator
    from hub.runtime.dead_letters import audit

    engine = _engine()
    if not remove_operator(engine, name):
        _fail(f"no operator {name}", 1)
    audit(engine, _actor(), "operators.remove", name, 1)
    typer.echo(f"operator {name} removed")


def demo_operators(settings: Settings) -> None:
    """For `hub up --demo`: the demo's accounts, created if missing, and how to sign in with them. Only in the
    embedded default's own database: accounts with published passwords must never reach a real one."""
    from hub.console.operators import ensure_demo_operators
    from hub.store.engine import open_store

    if settings.database_url:
        typer.echo(
            "console    no demo accounts: HUB_DATABASE_URL names a database of its own; "
            "create accounts with `hub operators add`",
            err=True,
        )
        return
    try:
        lines = ensure_demo_operators(open_store(settings))
    except Exception as error:  # the hub keeps running; the accounts are a convenience
        typer.echo(f"console    demo accounts not created: {type(error).__name__}", err=True)
        return
    for line in lines:
        typer.echo(f"console    sign in as {line}")
