"""The console's Coverage panel and the hub_coverage_* gauges: `hub report coverage` over the last 30 days.

Computed every COVERAGE_REFRESH_SECONDS, not on every page poll, and in a process of its own: the report reads
every victim notification of the window, which in a busy store is seconds of work. In a thread of the worker
it held the GIL in turns with urgent events for those seconds, once a minute (urgent notifications waited up to
900 ms during a long drain, against under 100 ms without it). The panel shows counts, rates, unit codes, event
types and event ids; no case reference, victim reference or anything else about a victim.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prometheus_client import Gauge

from hub import metrics
from hub.reports.coverage import (
    DEFAULT_DAYS,
    CoverageReport,
    Figures,
    coverage_of_store,
    default_period,
)
from routing.decisions import Action

log = logging.getLogger(__name__)

COVERAGE_FIRST_SECONDS = 30.0  # after the worker starts
COVERAGE_REFRESH_SECONDS = 60.0  # at the most often
# A report that took t seconds is computed again t times this later at the soonest: a tenth of a core on average.
COVERAGE_SHARE_INVERSE = 10
COVERAGE_NICENESS = 10  # how much lower the coverage process's CPU priority is than the worker's
PARENT_CHECK_SECONDS = 1.0
GAPS_LISTED = 50


def _utc_now() -> datetime:
    return datetime.now(UTC)


def console_view(report: CoverageReport, computed_at: datetime) -> dict[str, Any]:
    """What the panel draws: the report's figures, and its gaps by event id without their case references."""
    return {
        "computed_at": computed_at.isoformat(),
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "days": DEFAULT_DAYS,
        "urgent_ack_minutes": report.urgent_ack_minutes,
        "inspection": [
            {
                "measure": measure.name,
                "title": measure.title,
                "inspection_rate": measure.inspection_percent / 100,
                **figures.as_dict(),
            }
            for measure, figures in report.inspection
        ],
        "by_event_type": [
            {"category": category, "event_type": event_type, **figures.as_dict()}
            for (category, event_type), figures in report.by_event_type.items()
        ],
        "by_unit": [{"unit": unit, **figures.as_dict()} for unit, figures in report.by_unit.items()],
        "total": report.total.as_dict(),
        "gaps": {
            "events": len(report.gaps),
            "victims": report.gap_victims,
            "items": [
                {
                    "event_id": gap.event_id,
                    "event_type": gap.event_type,
                    "unit": gap.unit,
                    "victims": gap.victims,
                    "expected": gap.expected,
                }
                for gap in report.gaps[:GAPS_LISTED]
            ],
        },
    }


class CoverageGauges:
    """Sets the hub_coverage_* gauges from a report, and removes the series a later report no longer has (an
    event type or unit that left the window), so a gauge never keeps an old value."""

    def __init__(self) -> None:
        self._series: dict[Gauge, set[tuple[str, ...]]] = {}

    def _set(
        self, seen: dict[Gauge, set[tuple[str, ...]]], gauge: Gauge, labels: tuple[str, ...], value: float
    ) -> None:
        gauge.labels(*labels).set(value)
        seen.setdefault(gauge, set()).add(labels)

    def export(self, report: CoverageReport) -> None:
        seen: dict[Gauge, set[tuple[str, ...]]] = {}
        for (category, event_type), figures in report.by_event_type.items():
            self._set(seen, metrics.COVERAGE_EVENTS, (category, event_type), figures.events)
            for action, victims in _by_action(figures).items():
                labels = (category, event_type, action)
                self._set(seen, metrics.COVERAGE_VICTIMS, labels, victims)
                self._set(seen, metrics.COVERAGE_WRITTEN, labels, figures.written_by_action.get(action, 0))
                acknowledged = figures.acknowledged_by_action.get(action, 0)
                self._set(seen, metrics.COVERAGE_ACKNOWLEDGED, labels, acknowledged)
            for reason, count in figures.recorded.items():
                self._set(seen, metrics.COVERAGE_RECORDED_ONLY, (category, event_type, reason), count)
        for unit, figures in report.by_unit.items():
            for action, victims in _by_action(figures).items():
                self._set(seen, metrics.COVERAGE_UNIT_VICTIMS, (unit, action), victims)
                written = figures.written_by_action.get(action, 0)
                self._set(seen, metrics.COVERAGE_UNIT_WRITTEN, (unit, action), written)
                acknowledged = figures.acknowledged_by_action.get(action, 0)
                self._set(seen, metrics.COVERAGE_UNIT_ACKNOWLEDGED, (unit, action), acknowledged)
            for quantile, value in (("0.5", figures.acknowledge_median), ("0.9", figures.acknowledge_p90)):
                if value is not None:
                    self._set(seen, metrics.COVERAGE_ACKNOWLEDGE_SECONDS, (unit, quantile), value)
            self._set(seen, metrics.COVERAGE_URGENT_WITHIN_TARGET, (unit,), figures.urgent_in_time)
        for measure, figures in report.inspection:
            if figures.written_rate is not None:
                self._set(seen, metrics.COVERAGE_INSPECTION_RATIO, (measure.name,), figures.written_rate)
        metrics.COVERAGE_GAPS.set(report.gap_victims)
        for gauge, series in self._series.items():
            for gone in series - seen.get(gauge, set()):
                gauge.remove(*gone)
        self._series = seen


def _by_action(figures: Figures) -> dict[str, int]:
    """Victims by action, only the actions a row has: a series per action at zero would add nothing."""
    counts = {
        Action.INFORM_VICTIM.value: figures.inform,
        Action.RECORD_ONLY.value: figures.record_only,
        Action.SAFETY_REVIEW.value: figures.safety_review,
    }
    return {action: count for action, count in counts.items() if count}


def start_coverage_process(parent: int) -> None:
    """The coverage process's set-up. It runs below the worker's CPU priority, so that on a busy machine a long
    report takes what the worker and the broker leave. And it ends once the worker that started it is gone: a
    worker killed outright cannot stop it, and it would wait for work from the worker for ever."""
    os.nice(COVERAGE_NICENESS)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class CoverageWatch:
    """The latest coverage of the last DEFAULT_DAYS for the panel, refreshed in the background by a process of
    its own (started at the first refresh, stopped by `close`)."""

    def __init__(
        self,
        database_url: str,
        connect_args: Mapping[str, str],
        urgent_ack_minutes: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.database_url = database_url
        self.connect_args = dict(connect_args)
        self.urgent_ack_minutes = urgent_ack_minutes
        self.clock = clock
        self.view: dict[str, Any] | None = None  # None until the first report is in
        self.gauges = CoverageGauges()
        self._process: ProcessPoolExecutor | None = None

    async def refresh(self) -> None:
        if self._process is None:
            # spawn, not fork: a fork of the worker would copy its threads' locks and its broker connections.
            self._process = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_coverage_process,
                initargs=(os.getpid(),),
            )
        since, until = default_period(self.clock())
        report = await asyncio.get_running_loop().run_in_executor(
            self._process,
            partial(
                coverage_of_store,
                self.database_url,
                self.connect_args,
                since,
                until,
                urgent_ack_minutes=self.urgent_ack_minutes,
            ),
        )
        self.gauges.export(report)
        self.view = console_view(report, self.clock())

    def close(self) -> None:
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None

    async def run(self) -> None:
        # The first report waits: a worker starting up catches up on what it missed, and starting the coverage
        # process and its report would compete with that.
        await asyncio.sleep(COVERAGE_FIRST_SECONDS)
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.refresh()
                except BrokenProcessPool:  # the process died (killed, out of memory): a new one next time
                    log.warning("coverage not computed (its process stopped); trying again later")
                    self.close()
                except Exception as error:  # the case store may be away; the panel keeps its last figures
                    log.warning("coverage not computed (%s); trying again later", type(error).__name__)
                took = time.monotonic() - started
                await asyncio.sleep(max(COVERAGE_REFRESH_SECONDS, COVERAGE_SHARE_INVERSE * took))
        finally:
            self.close()
