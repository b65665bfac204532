"""The database becomes unreachable for 30 seconds while events flow: nothing is lost, nothing is shown twice,
and processing resumes by itself when the database returns, without a restart.

PostgreSQL (the production database) sits behind a TCP proxy that the test cuts: open connections are reset and
new ones refused, as when the database host goes away. While it is away, events wait in the retry ladder.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.faults.cases import publish_all, slice_events
from tests.faults.tcp_proxy import TcpProxy
from tests.integration.conftest import Hub, new_hub, running_worker
from tests.integration.waiting import eventually, read_topic, scrape

CASES = 300
OUTAGE_SECONDS = 30


def unique_notifications(hub: Hub, topic: str) -> set[bytes]:
    """Each notification once, whichever copy: a copy sent again is sealed anew, so values are compared opened."""
    return {
        record.value
        for record in read_topic(hub.env["HUB_BROKER"], topic, timeout=30, opener=hub.opener("YH"))
    }


@pytest.mark.timeout(420)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_thirty_seconds_without_the_database_loses_nothing_and_recovers_by_itself(
    broker: str, database_url: str, tmp_path
) -> None:
    now = datetime.now(UTC)
    slices = [slice_events(n, now) for n in range(CASES)]
    before, during = slices[: CASES // 2], slices[CASES // 2 :]
    queue_topic_suffix = "vlo.YH"

    with TcpProxy("127.0.0.1", 5432) as proxy:
        hub = new_hub(broker, database_url.replace(":5432/", f":{proxy.port}/"), tmp_path)
        # Outlasts the outage (about 60 s in all) with short top tiers, so recovery is seen within seconds.
        hub.env["HUB_RETRY_DELAYS_SECONDS"] = "[1, 2, 4, 8, 8, 8, 8, 8, 8, 8]"
        topic = f"{hub.prefix}{queue_topic_suffix}"
        for _ in running_worker(hub):
            publish_all(hub, [[e for s in before for e in s[:2]], [s[2] for s in before]])
            eventually(
                lambda: unique_notifications(hub, topic),
                lambda found: len(found) >= 2 * len(before),
                120,
                2,
            )

            proxy.cut()
            cut_at = time.monotonic()
            # Sentences and referrals while the database is away; releases once they are in (a release read
            # before its victim's referral would go to the court's unit: a known cross-agency limitation).
            publish_all(hub, [[e for s in during for e in s[:2]]])
            retried = eventually(
                lambda: scrape(hub.web, "hub_retries_total"), lambda count: count > 0, OUTAGE_SECONDS, 1
            )
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
            waiting_during_outage = scrape(hub.web, "hub_retry_waiting")
            proxy.restore()
            restored_at = time.monotonic()

            eventually(
                lambda: unique_notifications(hub, topic),
                lambda found: len(found) >= 2 * len(before) + len(during),
                180,
                3,
            )
            recovered_in = time.monotonic() - restored_at
            publish_all(hub, [[s[2] for s in during]])
            eventually(
                lambda: unique_notifications(hub, topic), lambda found: len(found) >= 2 * CASES, 120, 2
            )
            time.sleep(3)  # a moment for stragglers that would be duplicates
            queue = hub.read_queue("YH", timeout=3)
            raw = read_topic(broker, topic, timeout=30, opener=hub.opener("YH"))
            dead = read_topic(broker, f"{hub.prefix}hub.dlq", timeout=5, opener=hub.opener())
            dead_letter_count = scrape(hub.web, "hub_dead_letters_total")

    per_case = Counter((n["case_ref"], n["event_type"]) for n in queue)
    expected = {(f"K{n:07d}", kind) for n in range(CASES) for kind in ("VictimReferred", "PrisonerReleased")}
    lost = expected - set(per_case)
    twice = [key for key, count in per_case.items() if count > 1]
    print(
        f"\n{3 * CASES} events; database away {OUTAGE_SECONDS}s; retries {retried:.0f}; "
        f"waiting in retry at the end of the outage {waiting_during_outage:.0f}; all caught up "
        f"{recovered_in:.0f}s after it returned; {len(queue)} notifications shown (expected {2 * CASES}); "
        f"lost {len(lost)}; shown twice {len(twice)}; raw records {len(raw)}; dead letters {len(dead)}"
    )
    assert retried > 0
    assert waiting_during_outage > 0
    assert lost == set()
    assert twice == []
    assert len(queue) == 2 * CASES
    assert dead == [] and dead_letter_count == 0
