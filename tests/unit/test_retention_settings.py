"""The retention settings: periods that depend on each other are refused when they do not hold, and what the
topics are created with follows them (hub/settings.py, hub/runtime/topics.py)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from pydantic import ValidationError

from hub.runtime.topics import DAY_MS, retention_of
from hub.settings import Settings
from hub.store.retention import RetentionSchedule, StepReport


def test_ids_of_applied_events_outlast_the_agency_topics() -> None:
    with pytest.raises(ValidationError, match="HUB_PROCESSED_EVENTS_RETENTION_DAYS"):
        Settings(agency_topic_retention_days=40, processed_events_retention_days=35)
    Settings(agency_topic_retention_days=35, processed_events_retention_days=35)


def test_retry_topics_outlast_the_longest_retry_delay() -> None:
    with pytest.raises(ValidationError, match="HUB_RETRY_TOPIC_RETENTION_HOURS"):
        Settings(retry_delays_seconds=(2.0, 7200.0), retry_topic_retention_hours=2)
    Settings(retry_delays_seconds=(2.0, 7200.0), retry_topic_retention_hours=3)


def test_the_schedule_and_the_topics_follow_the_settings() -> None:
    settings = Settings(topic_prefix="p.", queue_retention_days=45, dead_letter_retention_days=7)
    schedule = RetentionSchedule.from_settings(settings)
    retention = retention_of(settings)

    assert schedule.notification_payloads == schedule.reader_progress == timedelta(days=45)
    assert (
        retention("p.vlo.YH") == 45 * DAY_MS
    )  # a queue keeps a notification as long as the store its payload
    assert schedule.dead_letters == timedelta(days=7) and retention("p.hub.dlq") == 7 * DAY_MS
    assert retention("p.agency.court.urgent") == retention("p.agency.court.events") == 28 * DAY_MS
    assert retention("p.hub.retry.1") == 24 * 3600 * 1000
    assert retention("vlo.YH") is None and retention("p.faust-leader") is None  # not this deployment's


def test_a_report_line_names_counts_and_ids_and_says_how_many_more() -> None:
    report = StepReport("victim_data", "victims' personal data 90 days after their case closed")
    report.note(25, [f"CASE{n}" for n in range(25)], Counter({"victims anonymised": 30}))

    line = report.line(done=True)
    assert line.startswith("victim_data: 25 done (victims' personal data 90 days after their case closed)")
    assert "victims anonymised 30" in line and "CASE19 and 5 more" in line and "CASE20" not in line
    assert "CASE0" not in report.line(done=True, with_ids=False)
