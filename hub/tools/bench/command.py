"""`hub bench`: the command, its options and defaults (`--quick` for a small run). Progress goes to standard
error; a table and one machine-readable last line go to standard output. It imports little at load, so the CLI
registers it cheaply; the run itself is imported when the command runs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from hub.tools.bench.options import BenchOptions, DatabaseKind, Mode
from hub.tools.bench.progress import say


class _Sizes(TypedDict, total=False):
    """Sizes that replace BenchOptions' defaults."""

    cases: int
    events: int
    duration: float
    backlog: int


QUICK: _Sizes = {"cases": 1_000, "events": 4_000, "duration": 8.0, "backlog": 8_000}


def bench_command(
    cases: Annotated[
        int | None, typer.Option(help="Cases in the store (default 10,000; 1,000 with --quick).")
    ] = None,
    events: Annotated[
        int | None,
        typer.Option(help="Events to publish in throughput mode (default 20,000; 4,000 with --quick)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A small run (under a minute) with the same measurements.")
    ] = False,
    mode: Annotated[
        Mode, typer.Option(help="throughput, rate (offered load) or backlog (urgent while draining).")
    ] = (Mode.THROUGHPUT),
    rate: Annotated[float, typer.Option(help="Events per second offered in rate mode.")] = 1000.0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of offered load in rate mode (default 30).")
    ] = None,
    backlog: Annotated[
        int | None, typer.Option(help="Ordinary events queued in backlog mode (default 200,000).")
    ] = None,
    urgent_rate: Annotated[
        float, typer.Option(help="Urgent events per second while a backlog drains.")
    ] = 5.0,
    database: Annotated[
        DatabaseKind, typer.Option(help="sqlite (temporary file) or postgresql (scratch database).")
    ] = (DatabaseKind.SQLITE),
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic.")] = 1,
    keep: Annotated[
        bool, typer.Option(help="Keep the working directory (logs, database) for a look afterwards.")
    ] = False,
    store_cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep each loaded SQLite case store in this directory and copy it on later runs with the same "
            "--cases and --seed on the same day, instead of loading it again."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Throughput mode: after one worker, measure this many workers in one consumer group on the same "
            "events and an equal store, and check each event was applied once (needs --database postgresql)."
        ),
    ] = 1,
) -> None:
    """Measure the hub end to end on its own broker and database: throughput, latency, memory."""
    defaults: _Sizes = QUICK if quick else {}
    options = BenchOptions(
        mode=mode,
        cases=cases if cases is not None else defaults.get("cases", BenchOptions.cases),
        events=events if events is not None else defaults.get("events", BenchOptions.events),
        rate=rate,
        duration=duration if duration is not None else defaults.get("duration", BenchOptions.duration),
        backlog=backlog if backlog is not None else defaults.get("backlog", BenchOptions.backlog),
        urgent_rate=urgent_rate,
        database=database,
        seed=seed,
        keep=keep,
        store_cache=store_cache,
        workers=workers,
    )
    if options.cases < 1 or options.events < 1 or options.rate <= 0 or options.urgent_rate <= 0:
        raise typer.BadParameter("--cases, --events, --rate and --urgent-rate must be positive")
    if store_cache is not None and database is not DatabaseKind.SQLITE:
        raise typer.BadParameter("--store-cache keeps SQLite stores only")
    check_workers(options)
    from hub.tools.bench.report import render
    from hub.tools.bench.run import BenchRun

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        report = BenchRun(options, workdir).run()
    except Exception as error:
        say(f"failed: {type(error).__name__}: {error}")
        raise typer.Exit(1) from None
    finally:
        if keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in render(report):
        typer.echo(line)
    if report.hub is None or not report.hub.complete:
        raise typer.Exit(1)
    if report.group is not None and not (report.group.outcome.complete and report.group.applied_once):
        raise typer.Exit(1)


def check_workers(options: BenchOptions) -> None:
    """`--workers N` compares N workers in one group with one, in throughput mode. SQLite lets one writer in at a
    time, so workers beyond the first would only queue for it: the comparison means something on PostgreSQL only."""
    if options.workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    if options.workers == 1:
        return
    if options.mode is not Mode.THROUGHPUT:
        raise typer.BadParameter("--workers above 1 is measured in throughput mode only")
    if options.database is not DatabaseKind.POSTGRESQL:
        raise typer.BadParameter(
            f"--workers {options.workers} needs --database postgresql: SQLite has a single writer, so the "
            "workers would take turns at it rather than work side by side"
        )
