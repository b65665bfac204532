"""Prometheus metrics. Labels hold only bounded values (sources, stages, error classes), never personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

BUILD = Info("hub_build", "Build information")
EVENTS = Counter(
    "hub_events_consumed_total", "Agency events consumed, by source and outcome", ["source", "outcome"]
)
DUPLICATES = Counter("hub_duplicate_events_total", "Events dropped as already processed", ["source"])
PARKED = Counter("hub_parked_events_total", "Events parked because no case matched yet", ["source"])
DEAD_LETTERS = Counter(
    "hub_dead_letters_total", "Messages sent to the dead-letter topic", ["stage", "error_class"]
)
NOTIFICATIONS = Counter(
    "hub_notifications_total", "Notifications written to unit queues", ["unit", "priority", "action"]
)
BATCH_SECONDS = Histogram("hub_batch_processing_seconds", "Time to process one batch of events")
TRANSIENT_RETRIES = Counter("hub_transient_retries_total", "Batches retried after a transient failure")
TIMERS_FIRED = Counter("hub_timers_fired_total", "Deadlines that fired a task or an escalation", ["timer"])
PARKED_WAITING = Gauge("hub_parked_events_waiting", "Events parked and still waiting for a matching case")
PARKED_OLDEST_SECONDS = Gauge("hub_parked_event_oldest_age_seconds", "Age of the oldest parked event")
UNMATCHED_POSTCODES = Counter(
    "hub_unmatched_postcodes_total", "Victims whose postcode maps to no unit, sent to national triage"
)
OUTBOX_PENDING = Gauge("hub_outbox_pending", "Notifications committed but not yet confirmed on their queue")
