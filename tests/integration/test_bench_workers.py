"""`hub bench --workers 2` on PostgreSQL, on a tiny run: two workers in one consumer group, measured after one
worker on the same events from an equal store, apply every event once, and the run leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.tools.bench.options import BenchOptions, DatabaseKind
from hub.tools.bench.report import render
from hub.tools.bench.run import BenchRun
from hub.tools.bench.store import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EVENTS = 300


def _databases() -> set[str]:
    """The databases on the bench's PostgreSQL server; skips the test (fails it in CI) if it is not reachable."""
    admin = create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect() as connection:
            return set(connection.scalars(text("SELECT datname FROM pg_database")))
    except Exception as error:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is required in CI and is not reachable: {error}") from error
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(error).__name__}")
    finally:
        admin.dispose()


def test_two_workers_in_one_group_apply_every_event_once(tmp_path: Path) -> None:
    _databases()  # PostgreSQL is there
    options = BenchOptions(cases=50, events=EVENTS, database=DatabaseKind.POSTGRESQL, workers=2, seed=3)
    run = BenchRun(options, tmp_path)

    report = run.run()

    assert report.hub is not None and report.hub.complete
    group = report.group
    assert group is not None and group.outcome.complete
    assert (group.outcome.events, group.applied, group.outcome.duplicates) == (EVENTS, EVENTS, 0)
    assert group.applied_once
    # Not always the one worker's count: an offender's events are keyed per agency, so two workers may apply
    # two agencies' events about one case in another order than one worker reading in publication order.
    assert group.outcome.results > 0 and report.hub.results > 0
    # Both took part: each spent CPU and applied batches of its own partitions.
    assert len(group.workers) == 2
    assert all(worker.cpu_seconds > 0 and worker.batches > 0 for worker in group.workers)
    assert report.bare is not None and report.bare.complete
    lines = render(report)
    assert f"applied once: yes ({EVENTS} events, {EVENTS} applied, 0 duplicate notifications)" in lines
    assert " workers=2 pair_eps=" in lines[-1] and lines[-1].endswith("applied_once=yes")
    # Two scratch databases, one a measurement, both dropped; every process stopped.
    assert len(run.scratch_databases) == 2
    assert not set(run.scratch_databases) & _databases()
    assert run.processes and all(process.poll() is not None for process in run.processes)  # the bare loop
    assert not any(Path(f"/proc/{worker.pid}").exists() for worker in group.workers)
    assert run.broker.process is None
