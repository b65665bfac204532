"""What a bench run found, and how it is shown: percentiles, the table, and one machine-readable last line."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.tools.bench.measuring import Outcome
from hub.tools.bench.options import BenchOptions, Mode


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of values sorted ascending: the smallest value with at least q% at or below it."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[rank - 1]


def summarise(values: Iterable[float]) -> LatencySummary | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return LatencySummary(
        len(ordered),
        percentile(ordered, 50),
        percentile(ordered, 95),
        percentile(ordered, 99),
        ordered[-1],
    )


def last_line(throughput_eps: float, bare_eps: float, p99_ms: float, rss_mb: float) -> str:
    """The line a checker reads: integers, and the hub/bare ratio to two places."""
    ratio = throughput_eps / bare_eps if bare_eps > 0 else 0.0
    return (
        f"throughput_eps={round(throughput_eps)} bare_eps={round(bare_eps)} ratio={ratio:.2f} "
        f"p99_ms={round(p99_ms)} rss_mb={round(rss_mb)}"
    )


@dataclass(frozen=True)
class WorkerFigures:
    """One worker of a group over its measured run: CPU from /proc, batches from its /metrics."""

    pid: int
    cpu_seconds: float
    batches: float
    rss_mb: float


@dataclass
class GroupReport:
    """`--workers N`: the same events through N workers in one consumer group, from an equal starting store."""

    outcome: Outcome
    workers: list[WorkerFigures]
    applied: int  # events published that the group's store records as applied

    @property
    def applied_once(self) -> bool:
        """Every event published applied (the store keeps one row an event id), and no notification read twice."""
        return self.applied == self.outcome.events and self.outcome.duplicates == 0

    def cpu_per_event_us(self, cpu_seconds: float) -> float:
        """CPU over every event of the run, as the one worker's figure is: a worker's share, or the group's sum."""
        return cpu_seconds / max(self.outcome.events, 1) * 1e6


def group_fields(group: GroupReport, one_eps: float) -> str:
    """What `--workers N` adds to the last line: the group's throughput, its ratio to one worker's, the CPU per
    event of all its workers together, and whether every event was applied once."""
    ratio = group.outcome.eps / one_eps if one_eps > 0 else 0.0
    cpu = group.cpu_per_event_us(sum(worker.cpu_seconds for worker in group.workers))
    return (
        f"workers={len(group.workers)} pair_eps={round(group.outcome.eps)} pair_ratio={ratio:.2f} "
        f"pair_cpu_us={round(cpu)} applied_once={'yes' if group.applied_once else 'no'}"
    )


def applied_once_line(group: GroupReport) -> str:
    outcome = group.outcome
    return (
        f"applied once: {'yes' if group.applied_once else 'NO'} ({outcome.events:,} events, "
        f"{group.applied:,} applied, {outcome.duplicates:,} duplicate notifications)"
    )


def group_rows(group: GroupReport, one: Outcome) -> list[tuple[str, str]]:
    """The group's figures beside the one worker's, measured on the same events in the same run."""
    outcome = group.outcome
    latency = summarise(outcome.latencies + outcome.urgent_latencies)
    rows = [
        ("throughput, events/s", f"{outcome.eps:,.0f}"),
        ("  against one worker", f"{outcome.eps / one.eps:,.2f}x" if one.eps > 0 else "-"),
        ("first publish to last result, s", f"{outcome.seconds:,.2f}"),
        ("results (notifications)", f"{outcome.results:,}"),
        ("latency p50, ms", _ms(latency, "p50")),
        ("latency p99, ms", _ms(latency, "p99")),
    ]
    for number, worker in enumerate(group.workers, 1):
        rows.append(
            (
                f"worker {number} share of CPU per event, us",
                f"{group.cpu_per_event_us(worker.cpu_seconds):,.0f}",
            )
        )
        rows.append((f"worker {number} batches applied", f"{worker.batches:,.0f}" if worker.batches else "-"))
        rows.append((f"worker {number} peak RSS, MB", f"{worker.rss_mb:,.0f}"))
    total = sum(worker.cpu_seconds for worker in group.workers)
    rows.append(("CPU per event, all workers, us", f"{group.cpu_per_event_us(total):,.0f}"))
    return rows


@dataclass
class Report:
    options: BenchOptions
    load_seconds: float = 0.0
    store_copied: bool = False  # from --store-cache, not loaded
    events: int = 0
    event_mix: str = ""
    hub: Outcome | None = None
    bare: Outcome | None = None
    worker_rss_mb: float = 0.0
    bare_rss_mb: float = 0.0
    worker_cpu_seconds: float = 0.0
    verify_us: float = 0.0  # checking one agency signature, alone
    seal_us: float = 0.0  # sealing one record, alone
    backlog_drain_seconds: float = 0.0
    backlog_events: int = 0
    batches: float = 0.0
    batch_seconds: float = 0.0
    group: GroupReport | None = None  # --workers N


def _ms(summary: LatencySummary | None, attribute: str) -> str:
    return f"{getattr(summary, attribute):,.1f}" if summary else "-"


def render(report: Report) -> list[str]:
    options = report.options
    hub = report.hub
    lines = [
        f"hub bench: {options.mode.value} mode, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {options.database.value}",
        f"case store   {options.cases:,} cases, "
        f"{'copied from --store-cache' if report.store_copied else 'bulk-loaded'} in {report.load_seconds:.1f}s",
    ]
    if options.mode is Mode.BACKLOG:
        lines.append(f"backlog      {report.backlog_events:,} ordinary events ({report.event_mix})")
    else:
        lines.append(f"events       {report.events:,} ({report.event_mix})")
    if hub is None:
        return lines
    all_ms = summarise(hub.latencies + hub.urgent_latencies)
    urgent_ms = summarise(hub.urgent_latencies)
    rows: list[tuple[str, str, str]] = []
    if options.mode is Mode.BACKLOG:
        rows += [
            ("backlog drained in s", f"{report.backlog_drain_seconds:,.1f}", ""),
            (
                "drain rate, events/s",
                f"{report.backlog_events / max(report.backlog_drain_seconds, 1e-9):,.0f}",
                "",
            ),
            ("urgent notifications measured", f"{len(hub.urgent_latencies):,}", ""),
        ]
        for name in ("p50", "p95", "p99", "max"):
            rows.append((f"urgent latency {name}, ms", _ms(urgent_ms, name), ""))
        # The two parts of each urgent latency: the hub's, and the broker's and the bench reader's after it.
        until_sent = summarise(hub.urgent_until_sent)
        after_sent = summarise(
            t - u for t, u in zip(hub.urgent_latencies, hub.urgent_until_sent, strict=True)
        )
        for name in ("p50", "p99", "max"):
            rows.append((f"  until the worker sent it, {name}", _ms(until_sent, name), ""))
        for name in ("p50", "p99", "max"):
            rows.append((f"  from then until read, {name}", _ms(after_sent, name), ""))
        rows.append(
            ("ordinary latency p99, ms (queued before start)", _ms(summarise(hub.latencies), "p99"), "")
        )
    else:
        bare = report.bare
        bare_ms = summarise(bare.latencies) if bare else None
        rows += [
            ("throughput, events/s", f"{hub.eps:,.0f}", f"{bare.eps:,.0f}" if bare else ""),
            (
                "first publish to last result, s",
                f"{hub.seconds:,.2f}",
                f"{bare.seconds:,.2f}" if bare else "",
            ),
            (
                "publishing took, s",
                f"{hub.publish_seconds:,.2f}",
                f"{bare.publish_seconds:,.2f}" if bare else "",
            ),
            ("results (notifications / messages)", f"{hub.results:,}", f"{bare.results:,}" if bare else ""),
        ]
        for name in ("p50", "p95", "p99", "max"):
            rows.append((f"latency {name}, ms", _ms(all_ms, name), _ms(bare_ms, name) if bare else ""))
        if options.mode is Mode.RATE:
            # As in backlog mode: the hub's part, and the broker's and the bench reader's after it.
            until_sent = summarise(hub.until_sent + hub.urgent_until_sent)
            for name in ("p50", "p99"):
                rows.append((f"  until the worker sent it, {name}", _ms(until_sent, name), ""))
        if urgent_ms:
            rows.append(("urgent latency p99, ms", _ms(urgent_ms, "p99"), ""))
        if options.mode is Mode.RATE:
            rows.append(("offered, events/s", f"{options.rate:,.0f}", ""))
    per_event_us = report.worker_cpu_seconds / max(report.events, 1) * 1e6
    if report.batches:
        rows.append(
            (
                "batches applied (mean events each)",
                f"{report.batches:,.0f} ({report.events / report.batches:,.0f})",
                "",
            )
        )
        rows.append(("time applying batches, s", f"{report.batch_seconds:,.1f}", ""))
    rows += [
        ("worker CPU per event, us", f"{per_event_us:,.0f}" if report.worker_cpu_seconds else "-", ""),
        ("  of which signature check, us", f"{report.verify_us:,.0f}" if report.verify_us else "-", ""),
        ("  sealing one record, us", f"{report.seal_us:,.1f}" if report.seal_us else "-", ""),
        ("peak RSS, MB", f"{report.worker_rss_mb:,.0f}", f"{report.bare_rss_mb:,.0f}" if report.bare else ""),
    ]
    width = max(len(name) for name, _, _ in rows) + 2
    lines.append("")
    lines.append(
        f"{'':{width}}{'hub worker':>14}{'bare loop' if options.mode is Mode.THROUGHPUT else '':>14}"
    )
    lines += [f"{name:{width}}{hub_value:>14}{bare_value:>14}" for name, hub_value, bare_value in rows]
    if not hub.complete:
        lines.append("INCOMPLETE: the worker did not consume every event before the time limit")
    group = report.group
    if group is not None:
        lines.append("")
        lines.append(
            f"{len(group.workers)} workers in one consumer group: the same events, an equal store, a fresh broker"
        )
        extra = group_rows(group, hub)
        extra_width = max(width, *(len(name) + 2 for name, _ in extra))
        lines += [f"{name:{extra_width}}{value:>14}" for name, value in extra]
        if not group.outcome.complete:
            lines.append("INCOMPLETE: the workers did not consume every event before the time limit")
        lines.append(applied_once_line(group))
    lines.append("")
    if options.mode is Mode.THROUGHPUT:
        bare_eps = report.bare.eps if report.bare else 0.0
        line = last_line(hub.eps, bare_eps, all_ms.p99 if all_ms else 0.0, report.worker_rss_mb)
        lines.append(line if group is None else f"{line} {group_fields(group, hub.eps)}")
    elif options.mode is Mode.RATE:
        lines.append(
            f"offered_eps={round(options.rate)} p50_ms={round(all_ms.p50) if all_ms else 0} "
            f"p95_ms={round(all_ms.p95) if all_ms else 0} p99_ms={round(all_ms.p99) if all_ms else 0} "
            f"rss_mb={round(report.worker_rss_mb)}"
        )
    else:
        lines.append(
            f"backlog={report.backlog_events} "
            f"drain_eps={round(report.backlog_events / max(report.backlog_drain_seconds, 1e-9))} "
            f"urgent_p99_ms={round(urgent_ms.p99) if urgent_ms else 0} rss_mb={round(report.worker_rss_mb)}"
        )
    return lines
