"""A worker killed with SIGKILL at random moments while 20,000 events flow: nothing lost, nothing twice.

After the last restart every case must have exactly its two notifications (the first-contact task raised by the
referral and the release) as `hub queue read` shows them; the raw copies on the topic (at-least-once
delivery) are counted and reported, not forbidden.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from hub.runtime.processes import spawn, stop
from tests.faults.cases import publish_all, slice_events
from tests.integration.conftest import HUB, new_hub
from tests.integration.waiting import eventually, read_topic, wait_until_healthy

CASES = 6_667  # three events each: 20,001 events
KILLS = 3


@pytest.mark.timeout(600)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(
    broker: str, database_url: str, tmp_path
) -> None:
    hub = new_hub(broker, database_url, tmp_path)
    hub.env["HUB_SESSION_TIMEOUT_SECONDS"] = "6"
    now = datetime.now(UTC)
    slices = [slice_events(n, now) for n in range(CASES)]
    # Referrals first, releases after: a release consumed before its referral would go to the court's unit.
    first_wave = [event for s in slices for event in s[:2]]
    second_wave = [s[2] for s in slices]
    rng = random.Random(20261123)
    log = hub.data_dir / "worker.log"

    worker = spawn([*HUB, "worker"], log, env=hub.env)
    kills = 0
    started = time.monotonic()
    try:
        wait_until_healthy(f"{hub.web}/health", worker, log, timeout=90)
        publish_all(hub, [first_wave, second_wave])
        published_in = time.monotonic() - started
        for _ in range(KILLS):
            time.sleep(rng.uniform(2.0, 6.0))
            os.kill(worker.pid, signal.SIGKILL)  # no goodbye: no commit, no leave-group, no flush
            worker.wait(10)
            kills += 1
            worker = spawn([*HUB, "worker"], log, env=hub.env)
            wait_until_healthy(f"{hub.web}/health", worker, log, timeout=90)

        expected = 2 * CASES
        topic = f"{hub.prefix}vlo.YH"
        # Wait until every notification is on the queue at least once (a kill between the database commit and
        # the publish leaves it to the outbox sweep, 30 s later); then a moment for stragglers.
        eventually(
            lambda: read_topic(hub.env["HUB_BROKER"], topic, timeout=60, opener=hub.opener("YH")),
            lambda found: len({r.value for r in found}) >= expected,
            timeout=300,
            interval=10,
        )
        time.sleep(5)
        queue = hub.read_queue("YH", timeout=3)
        raw = read_topic(hub.env["HUB_BROKER"], topic, timeout=60, opener=hub.opener("YH"))
    finally:
        stop(worker, 10)
    elapsed = time.monotonic() - started

    per_case = Counter((n["case_ref"], n["event_type"]) for n in queue)
    missing = [
        c
        for n in range(CASES)
        for c in ((f"K{n:07d}", "VictimReferred"), (f"K{n:07d}", "PrisonerReleased"))
        if per_case[c] == 0
    ]
    twice = [c for c, count in per_case.items() if count > 1]
    print(
        f"\nworker killed {kills} times; {3 * CASES} events published in {published_in:.1f}s; "
        f"{len(queue)} notifications shown by `hub queue read` (expected {expected}); lost {len(missing)}; "
        f"duplicates shown {len(twice)}; raw records on the topic {len(raw)} "
        f"({len(raw) - len(queue)} raw duplicates absorbed by notification_id); {elapsed:.0f}s in all"
    )
    assert kills == KILLS
    assert missing == []
    assert twice == []
    assert len(queue) == expected
    assert {n["kind"] for n in queue} == {"task", "event"}
