"""Throughput and latency over the last minutes, from this process's own Prometheus metrics.

Every few seconds the console reads the counters and histograms of hub/metrics.py into a ring buffer; rates
and percentiles are differences between samples, as Prometheus' rate() and histogram_quantile() would give.
The numbers are this worker's: with several workers, Prometheus and the Grafana dashboard add them up.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry

SAMPLE_SECONDS = 2.0
WINDOW_SECONDS = 15 * 60
BUCKET_SECONDS = 15  # one point of a sparkline
RECENT_SECONDS = 60  # "now": the rate over the last minute

Key = tuple[str, ...]


@dataclass
class Sample:
    at: float
    events: dict[Key, float] = field(default_factory=lambda: defaultdict(float))  # (source, outcome)
    notifications: dict[Key, float] = field(default_factory=lambda: defaultdict(float))  # (unit, priority)
    # priority -> {upper bound: cumulative count}; "" is the batch processing histogram
    latency: dict[str, dict[float, float]] = field(default_factory=lambda: defaultdict(dict))
    batch: dict[float, float] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)  # source -> unix time
    retry_waiting: dict[str, float] = field(default_factory=dict)  # tier -> messages
    retry_oldest_seconds: float | None = None


def read_sample(registry: CollectorRegistry, at: float) -> Sample:
    sample = Sample(at)
    for family in registry.collect():
        if not family.name.startswith("hub_"):
            continue
        for s in family.samples:
            labels = s.labels
            match s.name:
                case "hub_events_consumed_total":
                    sample.events[(labels.get("source", ""), labels.get("outcome", ""))] += s.value
                case "hub_notifications_total":
                    sample.notifications[(labels.get("unit", ""), labels.get("priority", ""))] += s.value
                case "hub_end_to_end_latency_seconds_bucket":
                    sample.latency[labels.get("priority", "")][float(labels["le"])] = s.value
                case "hub_batch_processing_seconds_bucket":
                    sample.batch[float(labels["le"])] = s.value
                case "hub_source_last_event_timestamp_seconds":
                    sample.last_event[labels.get("source", "")] = s.value
                case "hub_retry_waiting":
                    sample.retry_waiting[labels.get("tier", "")] = s.value
                case "hub_retry_oldest_age_seconds":
                    sample.retry_oldest_seconds = s.value
    return sample


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts; None without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the largest bucket: its bound is all that is known
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower


def _difference(new: Mapping[float, float], old: Mapping[float, float] | None) -> dict[float, float]:
    return {bound: count - (old or {}).get(bound, 0.0) for bound, count in new.items()}


def _latency_of(priority: str) -> Callable[[Sample], Mapping[float, float]]:
    """One priority's latency histogram of a sample."""
    return lambda sample: sample.latency.get(priority, {})


def _sum(values: Mapping[Key, float], match: Callable[[Key], bool]) -> float:
    return sum(value for key, value in values.items() if match(key))


class MetricsHistory:
    """The last WINDOW_SECONDS of samples; `view()` turns them into what the console shows."""

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.samples: deque[Sample] = deque(maxlen=int(WINDOW_SECONDS / SAMPLE_SECONDS) + 2)
        self._edges_cache: tuple[Sample, list[Sample | None]] | None = None

    def sample(self) -> None:
        self.samples.append(read_sample(self.registry, self.clock()))

    def _at(self, instant: float) -> Sample | None:
        """The latest sample taken at or before `instant`."""
        index = bisect.bisect_right(self.samples, instant, key=lambda sample: sample.at)
        return self.samples[index - 1] if index else None

    def _since(self, seconds: float) -> Sample | None:
        """The sample to difference against for the last `seconds` (the oldest one if history is shorter)."""
        if not self.samples:
            return None
        latest = self.samples[-1]
        return self._at(latest.at - seconds) or self.samples[0]

    def _rate(self, values: Callable[[Sample], float], seconds: float) -> float | None:
        if len(self.samples) < 2:
            return None
        latest, old = self.samples[-1], self._since(seconds)
        assert old is not None
        elapsed = latest.at - old.at
        return (values(latest) - values(old)) / elapsed if elapsed > 0 else None

    def _count(self, values: Callable[[Sample], float], seconds: float) -> float:
        if not self.samples:
            return 0.0
        old = self._since(seconds)
        assert old is not None
        return values(self.samples[-1]) - (values(old) if len(self.samples) > 1 else 0.0)

    def _series(self, values: Callable[[Sample], float]) -> list[float | None]:
        """Per-second rates in BUCKET_SECONDS steps over the window, oldest first; None where no data."""
        if not self.samples:
            return []
        edges = self._edges()
        series: list[float | None] = []
        for before, after in zip(edges, edges[1:], strict=False):
            if before is None or after is None or after.at <= before.at:
                series.append(None)
            else:
                series.append(round((values(after) - values(before)) / (after.at - before.at), 3))
        return series

    def _edges(self) -> list[Sample | None]:
        """The samples at the sparkline's step boundaries, the same for every series of one view."""
        latest = self.samples[-1]
        if self._edges_cache is None or self._edges_cache[0] is not latest:
            steps = WINDOW_SECONDS // BUCKET_SECONDS
            first = self.samples[0]
            edges = []
            for k in range(steps):
                edge = self._at(latest.at - (steps - k) * BUCKET_SECONDS)
                # The step in which sampling began counts from the first sample: a partial step, not a gap.
                if edge is None and latest.at - (steps - k - 1) * BUCKET_SECONDS > first.at:
                    edge = first
                edges.append(edge)
            self._edges_cache = (latest, [*edges, latest])
        return self._edges_cache[1]

    def _latency(self, histogram: Callable[[Sample], Mapping[float, float]], seconds: float) -> dict:
        if not self.samples:
            return {"count": 0, "p50": None, "p95": None, "p99": None}
        latest, old = self.samples[-1], self._since(seconds)
        assert old is not None
        window = _difference(histogram(latest), histogram(old) if old is not latest else None)
        count = max(window.values(), default=0.0)
        return {
            "count": round(count),
            **{name: quantile(q, window) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        }

    def view(self, sources: Iterable[str]) -> dict:
        latest = self.samples[-1] if self.samples else Sample(self.clock())
        known_sources = sorted({*sources, *(source for source, _ in latest.events)} - {""})
        source_rows = []
        for source in known_sources:

            def consumed(sample: Sample, source: str = source) -> float:
                return _sum(sample.events, lambda key: key[0] == source)

            def outcome(name: str, source: str = source) -> Callable[[Sample], float]:
                return lambda sample: sample.events.get((source, name), 0.0)

            source_rows.append(
                {
                    "source": source,
                    "per_second": self._rate(consumed, RECENT_SECONDS),
                    "window_total": round(self._count(consumed, WINDOW_SECONDS)),
                    "dead_letters": round(self._count(outcome("dead_letter"), WINDOW_SECONDS)),
                    "parked": round(self._count(outcome("parked"), WINDOW_SECONDS)),
                    "since_start": round(consumed(latest)),
                    "series": self._series(consumed),
                }
            )
        unit_rows = []
        for unit in sorted({unit for unit, _ in latest.notifications}):

            def written(sample: Sample, unit: str = unit) -> float:
                return _sum(sample.notifications, lambda key: key[0] == unit)

            def urgent(sample: Sample, unit: str = unit) -> float:
                return sample.notifications.get((unit, "urgent"), 0.0)

            unit_rows.append(
                {
                    "unit": unit,
                    "per_second": self._rate(written, RECENT_SECONDS),
                    "window_total": round(self._count(written, WINDOW_SECONDS)),
                    "urgent": round(self._count(urgent, WINDOW_SECONDS)),
                    "since_start": round(written(latest)),
                    "series": self._series(written),
                }
            )

        def all_events(sample: Sample) -> float:
            return sum(sample.events.values())

        def all_notifications(sample: Sample) -> float:
            return sum(sample.notifications.values())

        priorities = sorted(latest.latency)
        return {
            "sampled_seconds": round(latest.at - self.samples[0].at) if self.samples else 0,
            "window_seconds": WINDOW_SECONDS,
            "bucket_seconds": BUCKET_SECONDS,
            "events": {
                "per_second": self._rate(all_events, RECENT_SECONDS),
                "window_total": round(self._count(all_events, WINDOW_SECONDS)),
                "since_start": round(all_events(latest)),
                "series": self._series(all_events),
            },
            "notifications": {
                "per_second": self._rate(all_notifications, RECENT_SECONDS),
                "window_total": round(self._count(all_notifications, WINDOW_SECONDS)),
                "since_start": round(all_notifications(latest)),
                "series": self._series(all_notifications),
            },
            "sources": source_rows,
            "units": unit_rows,
            "latency": [
                {
                    "priority": priority,
                    "recent": self._latency(_latency_of(priority), RECENT_SECONDS),
                    "window": self._latency(_latency_of(priority), WINDOW_SECONDS),
                }
                for priority in priorities
            ],
            "batch": self._latency(lambda s: s.batch, WINDOW_SECONDS),
            "last_event": dict(latest.last_event),
            "retry": {
                "tiers": [
                    {"tier": tier, "waiting": round(n)} for tier, n in sorted(latest.retry_waiting.items())
                ],
                "waiting": round(sum(latest.retry_waiting.values())),
                "oldest_age_seconds": latest.retry_oldest_seconds,
            },
        }
