"""`hub report`: reports from the case store. `hub report coverage` is the inspection's measure for the hub."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

report_app = typer.Typer(help="Reports from the case store.", no_args_is_help=True)


# Days, instants to the second, or instants as the console and the JSON output write them (offset, microseconds).
INSTANT_FORMATS = [
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
]


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _utc(instant: datetime | None) -> datetime | None:
    if instant is None:
        return None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"hub: {message}", err=True)
    raise typer.Exit(code)


@report_app.command("coverage")
def coverage_command(
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=INSTANT_FORMATS,
            help="Events applied at or after this day or instant (UTC). Default: 30 days before --until.",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            formats=INSTANT_FORMATS, help="Events applied before this day or instant (UTC). Default: now."
        ),
    ] = None,
    unit: Annotated[str | None, typer.Option(help="Only this unit's victims, for example YH.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.TABLE,
) -> None:
    """The inspection's measure for the hub: who was told of each notifiable event, and every gap.

    The inspection's three measures first, then by category and event type and by unit; a gap is a victim left
    without a notification they should have had. Exit codes: 0 no gap, 1 gaps listed, 2 usage or set-up error.
    """
    from hub.reference import load_units
    from hub.reports.coverage import coverage, default_period, render_csv, render_json, render_table
    from hub.settings import Settings
    from hub.store.engine import make_engine

    settings = Settings()
    end = _utc(until) or datetime.now(UTC)
    start = _utc(since) or default_period(end)[0]
    if start >= end:
        _fail("--since must be before --until")
    code = unit.strip().upper() if unit else None
    if code is not None and load_units(settings).unit_by_code(code) is None:
        _fail(f"--unit: no unit {code} in the unit reference data")
    # Only references, codes and times are read: the case store's encrypted columns need no data key here.
    engine = make_engine(settings.resolved_database_url, connect_args=settings.database_connect_args)
    try:
        report = coverage(engine, start, end, unit=code, urgent_ack_minutes=settings.urgent_ack_minutes)
    finally:
        engine.dispose()
    render = {Format.TABLE: render_table, Format.CSV: render_csv, Format.JSON: render_json}[output]
    typer.echo(render(report), nl=False)
    if report.gaps:
        raise typer.Exit(1)
