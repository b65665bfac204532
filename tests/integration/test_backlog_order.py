"""A backlog drained after an outage is applied in the order the agencies published it, across their topics.

While the hub was away, the courts sentenced, witness care referred the victims, the victim contact units
allocated VLOs, and then the prisons released the offenders, each on its own topic. Read as fetched, a whole
topic's backlog could be applied before another's: a release before its allocation goes to the unit's triage
instead of the victim's VLO, and a referral before its sentence is parked (hub/runtime/publication_order.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub.reference import load_units
from hub.runtime.topics import ensure_topics, hub_topics
from hub.settings import Settings
from tests.faults.cases import encode, identifiers, publish_all, slice_events
from tests.integration.conftest import new_hub, running_worker
from tests.integration.waiting import eventually, scrape

CASES = 500  # four events each: 2,000, several of the lane's batches


@pytest.mark.timeout(300)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backlog_on_four_topics_is_applied_in_publication_order(
    broker: str, database_url: str, tmp_path
) -> None:
    now = datetime.now(UTC)
    hub = new_hub(broker, database_url, tmp_path)
    settings = Settings(broker=broker, topic_prefix=hub.prefix)
    units = [unit.code for unit in load_units(settings).units]
    asyncio.run(ensure_topics(broker, hub_topics(settings, units), settings.topic_partitions))

    sentences, referrals, releases = zip(*(slice_events(n, now) for n in range(CASES)), strict=True)
    allocations = [
        encode(
            "vcs",
            {
                "event_type": "CaseAllocated",
                "case_ref": identifiers(n)[0],
                "unit_code": "YH",
                "vlo_id": f"vlo-{n}",
            },
            now,
        )
        for n in range(CASES)
    ]
    # Published in this order, each wave confirmed before the next, while no worker runs.
    publish_all(hub, [list(sentences), list(referrals), allocations, list(releases)])

    for _ in running_worker(hub):
        released = eventually(
            lambda: [n for n in hub.read_queue("YH") if n["event_type"] == "PrisonerReleased"],
            lambda found: len(found) >= CASES,
            timeout=120,
            interval=2,
        )
        parked = scrape(hub.web, "hub_events_consumed_total", outcome="parked")

    assert len(released) == CASES
    # Every release reached the VLO allocated before it, not the unit's triage.
    expected = {f"P-{n}": f"vlo-{n}" for n in range(CASES)}
    assert {n["person_ref"]: n["vlo_id"] for n in released} == expected
    assert parked == 0  # no referral was applied before its sentence
