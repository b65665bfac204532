"""`hub bench --workers N`: what it accepts, and how the group's figures and its applied-once check are shown."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from hub.cli.main import app
from hub.tools.bench.measuring import Outcome
from hub.tools.bench.options import BenchOptions, DatabaseKind
from hub.tools.bench.report import GroupReport, Report, WorkerFigures, render
from hub.tools.bench.run import shared_out

LAST_LINE = re.compile(r"throughput_eps=(\d+) bare_eps=(\d+) ratio=(\d+\.\d\d) p99_ms=(\d+) rss_mb=(\d+)")


def _error(args: list[str]) -> tuple[int, str]:
    """The exit code and the error message, its panel's borders and line breaks taken out."""
    result = CliRunner().invoke(app, ["bench", *args])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_two_workers_on_sqlite_are_refused_before_anything_starts() -> None:
    code, message = _error(["--workers", "2"])
    assert code == 2
    assert "--workers 2 needs --database postgresql: SQLite has a single writer" in message


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (
            ["--workers", "2", "--database", "postgresql", "--mode", "rate"],
            "--workers above 1 is measured in throughput mode only",
        ),
    ],
)
def test_other_worker_counts_and_modes_are_refused(args: list[str], says: str) -> None:
    code, message = _error(args)
    assert code == 2
    assert says in message


def _outcome(events: int, seconds: float, duplicates: int = 0, complete: bool = True) -> Outcome:
    latencies = [float(ms) for ms in range(1, 101)]
    return Outcome(events, 0.0, seconds, latencies, [], 1_000, complete, 0.1, [], [], duplicates=duplicates)


def _report(group: GroupReport) -> Report:
    report = Report(BenchOptions(database=DatabaseKind.POSTGRESQL, events=2_000, workers=2))
    report.events = 2_000
    report.hub = _outcome(2_000, 2.0)  # 1,000 events/s
    report.bare = _outcome(2_000, 0.2)
    report.worker_cpu_seconds = 1.6
    report.worker_rss_mb = 150.0
    report.group = group
    return report


def _group(applied: int = 2_000, duplicates: int = 0) -> GroupReport:
    workers = [WorkerFigures(101, 1.0, 12, 151.0), WorkerFigures(102, 0.8, 10, 149.0)]
    return GroupReport(_outcome(2_000, 1.25, duplicates), workers, applied)  # 1,600 events/s


def test_the_report_shows_the_group_beside_the_one_worker() -> None:
    lines = render(_report(_group()))
    text = "\n".join(lines)

    assert "2 workers in one consumer group: the same events, an equal store, a fresh broker" in text
    assert re.search(r"^throughput, events/s +1,600$", text, re.M)
    assert re.search(r"^  against one worker +1\.60x$", text, re.M)
    # Each worker's CPU over every event of the run, as the one worker's figure is.
    assert re.search(r"^worker 1 share of CPU per event, us +500$", text, re.M)
    assert re.search(r"^worker 2 share of CPU per event, us +400$", text, re.M)
    assert re.search(r"^worker 1 batches applied +12$", text, re.M)
    assert re.search(r"^CPU per event, all workers, us +900$", text, re.M)
    assert "applied once: yes (2,000 events, 2,000 applied, 0 duplicate notifications)" in lines
    # The agreed keys first and unchanged, the group's after them.
    assert LAST_LINE.match(lines[-1])
    assert lines[-1].startswith("throughput_eps=1000 bare_eps=10000 ratio=0.10 p99_ms=99 rss_mb=150 ")
    assert lines[-1].endswith("workers=2 pair_eps=1600 pair_ratio=1.60 pair_cpu_us=900 applied_once=yes")


@pytest.mark.parametrize(("applied", "duplicates"), [(1_999, 0), (2_000, 1)])
def test_an_event_missing_or_a_notification_twice_is_not_applied_once(applied: int, duplicates: int) -> None:
    group = _group(applied, duplicates)
    lines = render(_report(group))

    assert not group.applied_once
    assert (
        f"applied once: NO (2,000 events, {applied:,} applied, {duplicates} duplicate notifications)" in lines
    )
    assert lines[-1].endswith("applied_once=no")


def test_one_worker_alone_reports_as_before() -> None:
    report = _report(_group())
    report.group = None
    lines = render(report)
    assert LAST_LINE.fullmatch(lines[-1])
    assert not any("applied once" in line or "consumer group" in line for line in lines)


def test_a_group_has_shared_its_partitions_out_when_each_is_read_by_one_worker() -> None:
    assert shared_out([{0, 2}, {1, 3}], 4)
    assert not shared_out([{0, 1, 2, 3}, None], 4)  # the second has taken nothing yet
    assert not shared_out([{0, 1, 2}, {2, 3}], 4)  # both read partition 2: the rebalance is not over
    assert not shared_out([{0, 2}, {1}], 4)  # partition 3 is read by neither
    assert shared_out([{0}, {1}, None], 2)  # more workers than partitions: one is left without
