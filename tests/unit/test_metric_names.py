"""The metrics follow Prometheus conventions and can never carry personal data in a label."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY, Metric

import hub.metrics  # noqa: F401  (registers the hub's metrics)

# Labels whose values come from bounded sets the hub defines (sources, units, stages, tiers...).
BOUNDED_LABELS = {
    "source",
    "event_type",
    "outcome",
    "unit",
    "priority",
    "action",
    "stage",
    "error_class",
    "tier",
    "timer",
    "what",
    "topic",
    "category",  # the catalogue's categories
    "reason",  # why a notification was record_only (hub/reports/coverage.py)
    "quantile",
    "measure",  # the inspection's three measures
}
TIME_WORDS = ("latency", "duration", "age", "seconds", "time")


def hub_metrics() -> list[Metric]:
    return [metric for metric in REGISTRY.collect() if metric.name.startswith("hub_")]


def test_every_metric_has_the_hub_prefix_help_and_a_snake_case_name() -> None:
    metrics = hub_metrics()

    assert len(metrics) >= 20
    for metric in metrics:
        assert re.fullmatch(r"hub_[a-z0-9_]+", metric.name), metric.name
        assert metric.documentation, metric.name


def test_counters_end_in_total_and_nothing_else_does() -> None:
    for metric in hub_metrics():
        samples = {sample.name for sample in metric.samples}
        if metric.type == "counter":
            assert all(name.endswith("_total") or name.endswith("_created") for name in samples), metric.name
        else:
            assert not metric.name.endswith("_total"), metric.name


def test_times_are_in_seconds() -> None:
    for metric in hub_metrics():
        if set(metric.name.split("_")) & set(TIME_WORDS) and metric.type != "info":
            assert metric.name.endswith(("_seconds", "_timestamp_seconds")), metric.name
        assert "millis" not in metric.name and not metric.name.endswith("_ms"), metric.name


def test_labels_are_only_bounded_domain_values() -> None:
    for metric in hub_metrics():
        if metric.type == "info":
            continue
        for sample in metric.samples:
            assert set(sample.labels) - {"le"} <= BOUNDED_LABELS, (metric.name, sample.labels)


def test_the_build_is_described() -> None:
    info = [
        sample for metric in REGISTRY.collect() if metric.name == "hub_build" for sample in metric.samples
    ]

    assert info and info[0].name == "hub_build_info"
    assert info[0].labels["version"] != "unknown" and info[0].labels["python"]
