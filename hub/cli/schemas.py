"""`hub schemas`: checking the Avro schemas agencies publish against for backward compatibility, and releasing
them."""

from __future__ import annotations

import typer

from hub.cli.common import (
    fail,
)

schemas_app = typer.Typer(help="The Avro schemas agencies publish against.", no_args_is_help=True)


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a schema can no longer read data written with one of its released versions."""
    from schemas.compatibility import check, released_versions

    problems = check()
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        fail(f"{len(problems)} backward-incompatible schema change(s)", 1)
    typer.echo(f"schemas compatible with {len(released_versions())} released version(s)")


@schemas_app.command("release")
def schemas_release() -> None:
    """Record the current version of every changed schema as released (after `hub schemas check` passes)."""
    from schemas.compatibility import check, release

    if problems := check():
        for problem in problems:
            typer.echo(problem, err=True)
        fail("refusing to release incompatible schemas", 1)
    for version in release():
        typer.echo(f"released {version.name} v{version.version}")
