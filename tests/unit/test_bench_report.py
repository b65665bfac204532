"""The pure parts of `hub bench`: percentiles, the last line a checker reads, the rows a bulk load writes."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime

import pytest

from hub.bench import case_rows, last_line, percentile, summarise
from hub.reference import load_units
from hub.settings import Settings
from hub.traffic import Traffic, case_identifiers

LAST_LINE = re.compile(r"throughput_eps=(\d+) bare_eps=(\d+) ratio=(\d+\.\d\d) p99_ms=(\d+) rss_mb=(\d+)")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(3).shuffle(values)
    summary = summarise(values)
    assert summary is not None
    assert (summary.count, summary.p50, summary.p95, summary.p99, summary.max) == (100, 50, 95, 99, 100)


def test_a_percentile_is_always_one_of_the_values() -> None:
    ordered = [2.0, 3.5, 40.0]
    assert percentile(ordered, 50) == 3.5
    assert percentile(ordered, 99) == 40.0
    assert percentile([7.0], 1) == 7.0


def test_no_latencies_have_no_summary() -> None:
    assert summarise([]) is None
    with pytest.raises(ValueError):
        percentile([], 50)


def test_last_line_has_exactly_the_agreed_fields() -> None:
    line = last_line(throughput_eps=2412.6, bare_eps=9650.2, p99_ms=48.4, rss_mb=151.7)
    assert line == "throughput_eps=2413 bare_eps=9650 ratio=0.25 p99_ms=48 rss_mb=152"
    assert LAST_LINE.fullmatch(line)


def test_last_line_without_a_bare_figure_gives_no_ratio() -> None:
    assert "ratio=0.00" in last_line(100.0, 0.0, 1.0, 1.0)


def test_loaded_rows_are_what_the_opening_events_leave_behind() -> None:
    today = date(2026, 3, 2)
    traffic = Traffic(seed=4, today=today)
    units = load_units(Settings())
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    for number in range(60):
        opening = traffic.opening_events(number)
        rows = case_rows(number, opening, units, now)
        ids = case_identifiers(number)
        [case] = rows["cases"]
        assert case["case_ref"] == ids.case_ref
        # The traffic opens only cases that the hub notifies about: statutory, or opened at a unit's discretion.
        assert case["eligibility_status"] in ("statutory", "discretionary")
        discretionary = any(e.fields["event_type"] == "DiscretionaryCaseOpened" for e in opening)
        assert (case["eligibility_status"] == "discretionary") == discretionary
        identifiers = {(row["kind"], row["value"]) for row in rows["identifiers"]}
        assert {("case_ref", ids.case_ref), ("noms_number", ids.noms_number), ("crn", ids.crn)} <= identifiers
        referral = next(e for e in opening if e.fields["event_type"] == "VictimReferred")
        [victim] = rows["victims"]
        assert victim["person_ref"] == referral.fields["victim"]["person_ref"]
        assert (
            victim["unit_code"] == units.resolve_unit(referral.fields["victim"]["address"]["postcode"]).code
        )
        [allocation] = rows["allocations"]
        assert allocation["case_id"] == case["id"]
