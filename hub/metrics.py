"""Prometheus metrics, named by Prometheus conventions: `hub_` prefix, `_total` counters, base units (seconds).

Labels hold only bounded values (sources, event types, units, stages, error classes, tiers), never personal
data, identifiers or free text. deploy/alerts.yml and the Grafana dashboard depend on these names.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, Info


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


# End-to-end and processing latencies of a few milliseconds up to minutes (a backlog drain).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

BUILD = Info("hub_build", "Build information: version, Python, stream engine")
BUILD.info(
    {
        "version": _version("victim-contact-hub"),
        "python": platform.python_version(),
        "faust": _version("faust-streaming"),
    }
)

# Each event counted once, by its final outcome: accepted, duplicate, parked, dead_letter (a retry is not an
# outcome: hub_retries_total counts those).
EVENTS = Counter(
    "hub_events_consumed_total",
    "Agency events consumed, by source, event type and outcome",
    ["source", "event_type", "outcome"],
)
LAST_EVENT = Gauge(
    "hub_source_last_event_timestamp_seconds",
    "Unix time of the last event accepted from each source (a silent agency stops moving it)",
    ["source"],
)
NOTIFICATIONS = Counter(
    "hub_notifications_total", "Notifications written to unit queues", ["unit", "priority", "action"]
)
PROCESSING_SECONDS = Histogram(
    "hub_batch_processing_seconds",
    "Time to apply one batch of events to the case store",
    buckets=LATENCY_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "hub_end_to_end_latency_seconds",
    "From an event's publication by its agency to its notification on the unit queue, by priority",
    ["priority"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "hub_dead_letters_total",
    "Messages sent to the dead-letter topic, by stage and error class",
    ["stage", "error_class"],
)
RETRIES = Counter(
    "hub_retries_total", "Messages sent to a retry tier after a transient failure, by tier", ["tier"]
)
RETRY_WAITING = Gauge("hub_retry_waiting", "Messages waiting in each retry tier", ["tier"])
RETRY_OLDEST_SECONDS = Gauge(
    "hub_retry_oldest_age_seconds", "How long the oldest message waiting in retry has been failing"
)
IN_PLACE_RETRIES = Counter(
    "hub_in_place_retries_total",
    "Retries of housekeeping work in place (timers, outbox, topic creation) after a transient failure",
    ["what"],
)
PARKED = Counter("hub_parked_events_total", "Events parked because no case matched yet", ["source"])
PARKED_WAITING = Gauge("hub_parked_events_waiting", "Events parked and still waiting for a matching case")
PARKED_OLDEST_SECONDS = Gauge("hub_parked_oldest_age_seconds", "Age of the oldest parked event")
TIMERS_FIRED = Counter("hub_timers_fired_total", "Deadlines that fired a task or an escalation", ["timer"])
TIMERS_PENDING = Gauge("hub_timers_pending", "Deadlines set and not yet fired, by timer", ["timer"])
TIMERS_OVERDUE = Gauge(
    "hub_timers_overdue", "Deadlines past due and not yet fired (the worker is behind), by timer", ["timer"]
)
URGENT_UNACKNOWLEDGED = Gauge(
    "hub_urgent_unacknowledged", "Urgent notifications not yet acknowledged by their unit"
)
UNMATCHED_POSTCODES = Counter(
    "hub_unmatched_postcodes_total", "Victims whose postcode maps to no unit, sent to national triage"
)
OUTBOX_PENDING = Gauge("hub_outbox_pending", "Notifications committed but not yet confirmed on their queue")
CONSUMER_LAG = Gauge(
    "hub_consumer_lag_messages", "Messages on a topic not yet consumed by this worker", ["topic"]
)
# outcome: delivered, failed (one attempt), dead_letter (attempts exhausted)
DELIVERIES = Counter(
    "hub_http_deliveries_total",
    "HTTP delivery attempts to unit endpoints, by unit and outcome",
    ["unit", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "hub_http_delivery_seconds", "Duration of one HTTP delivery attempt", ["unit"], buckets=LATENCY_BUCKETS
)

# Coverage, the inspection's measure (hub/reports/coverage.py): read from the case store over the last 30 days by
# each worker's console, so every worker shows the same values (aggregate with max, not sum). By event type, or by
# unit, never both crossed: that product would multiply the series. `category` follows from `event_type`.
COVERAGE_EVENTS = Gauge(
    "hub_coverage_events",
    "Notifiable events that reached referred victims of eligible cases, by event type, last 30 days",
    ["category", "event_type"],
)
COVERAGE_VICTIMS = Gauge(
    "hub_coverage_victims",
    "Victims of notifiable events (one per victim and event), by event type and action, last 30 days",
    ["category", "event_type", "action"],
)
COVERAGE_WRITTEN = Gauge(
    "hub_coverage_written",
    "Victims' notifications written to the unit's queue, by event type and action, last 30 days",
    ["category", "event_type", "action"],
)
COVERAGE_ACKNOWLEDGED = Gauge(
    "hub_coverage_acknowledged",
    "Victims' notifications acknowledged by the VLO, by event type and action, last 30 days",
    ["category", "event_type", "action"],
)
COVERAGE_RECORDED_ONLY = Gauge(
    "hub_coverage_recorded_only",
    "Victims whose notification was record_only, by event type and why, last 30 days",
    ["category", "event_type", "reason"],
)
COVERAGE_UNIT_VICTIMS = Gauge(
    "hub_coverage_unit_victims",
    "Victims of notifiable events (one per victim and event), by unit and action, last 30 days",
    ["unit", "action"],
)
COVERAGE_UNIT_WRITTEN = Gauge(
    "hub_coverage_unit_written",
    "Victims' notifications written to the unit's queue, by unit and action, last 30 days",
    ["unit", "action"],
)
COVERAGE_UNIT_ACKNOWLEDGED = Gauge(
    "hub_coverage_unit_acknowledged",
    "Victims' notifications acknowledged by the VLO, by unit and action, last 30 days",
    ["unit", "action"],
)
COVERAGE_ACKNOWLEDGE_SECONDS = Gauge(
    "hub_coverage_acknowledge_seconds",
    "From the unit's queue to the VLO's acknowledgement, median and 90th percentile by unit, last 30 days",
    ["unit", "quantile"],
)
COVERAGE_URGENT_WITHIN_TARGET = Gauge(
    "hub_coverage_urgent_acknowledged_within_target",
    "Urgent safety reviews acknowledged within HUB_URGENT_ACK_MINUTES, by unit, last 30 days",
    ["unit"],
)
COVERAGE_INSPECTION_RATIO = Gauge(
    "hub_coverage_inspection_ratio",
    "Share of victims to be informed whose notification is on their unit's queue, per inspection measure "
    "(open_conditions, temporary_release, release: the inspection found 0.43, 0.67, 0.88), last 30 days",
    ["measure"],
)
COVERAGE_GAPS = Gauge(
    "hub_coverage_gaps",
    "Victims left without a notification of a notifiable event they should have had, last 30 days (must be 0)",
)
