"""The pure parts of `hub bench`: percentiles, the last line a checker reads, the rows a bulk load writes, and
how notifications read at the far end become latencies."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from hub.reference import load_units
from hub.settings import Settings
from hub.tools.bench.measuring import Arrival, Arrivals, Publisher, notification_latencies
from hub.tools.bench.report import last_line, percentile, summarise
from hub.tools.bench.store import case_rows
from hub.tools.traffic import Traffic, case_identifiers
from schemas import notification_schema

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


def _notification(number: int, source_event: str) -> bytes:
    return hub_codec().encode(
        notification_schema(),
        {
            "notification_id": f"00000000-0000-4000-8000-{number:012d}",
            "kind": "event",
            "case_ref": "01QR0000126",
            "unit_code": "YH",
            "event_type": "PrisonerEscaped",
            "priority": "urgent",
            "action": "record_only",
            "summary": f"Notification {number}.",
            "created_at": datetime.now(UTC),
            "source_event_ids": [source_event],
        },
    )


def test_a_latency_is_split_at_the_moment_the_worker_sent_its_notification(tmp_path: Path) -> None:
    keys = KeysDirectory(tmp_path)
    keys.create_missing([], ["YH"])
    sealer = keys.sealer(keys.unit("YH"))  # as the worker writes them
    publisher = Publisher.__new__(Publisher)  # only its record of what was sent is read
    publisher.sent = {"escape": 10.0, "release": 10.0, "elsewhere": 11.0}
    publisher.urgent = {"escape"}
    arrivals = Arrivals(wall_minus_perf=1_000.0)
    # Sent at perf 10.0 = wall 1,010.0; the worker's producer took the notification 30 ms later; read at 10.25.
    escape = sealer.seal(_notification(1, "escape"))
    arrivals.add(10.25, _Record(timestamp=1_010_030, value=escape))
    arrivals.add(10.40, _Record(timestamp=1_010_300, value=escape))  # the outbox's second copy: counted once
    arrivals.add(10.50, _Record(timestamp=1_010_100, value=sealer.seal(_notification(2, "release"))))
    arrivals.add(
        10.60, _Record(timestamp=1_010_100, value=sealer.seal(_notification(3, "not-from-the-bench")))
    )

    times = notification_latencies(arrivals, publisher, keys.opener(keys.unit("YH")))

    assert times.urgent == pytest.approx([250.0])
    assert times.urgent_until_sent == pytest.approx([30.0])
    assert times.latencies == pytest.approx([500.0])
    assert times.until_sent == pytest.approx([100.0])  # the release's producer had it at wall 1,010.1
    assert times.notifications == 3  # every distinct notification read, the bench's or not
    assert times.duplicates == 1  # the outbox's second copy of the escape
    assert times.last == 10.50


def test_arrivals_keep_nothing_for_the_cycle_collector_to_walk() -> None:
    import gc

    arrivals = Arrivals()
    arrivals.add(1.0, _Record(timestamp=5, value=b"x", headers=[("hub.event", b"e1")]))
    gc.collect()
    gc.collect()  # a tuple of plain values leaves the walks once a collection finds its contents untracked
    assert not any(gc.is_tracked(row) for row in arrivals._rows)
    assert list(arrivals) == [Arrival(1.0, 5, b"x", (("hub.event", b"e1"),))]
    assert len(arrivals) == 1


class _Record:
    """What the bench's reader takes from a consumer record."""

    def __init__(self, timestamp: int, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        self.timestamp = timestamp
        self.value = value
        self.headers = headers or []
