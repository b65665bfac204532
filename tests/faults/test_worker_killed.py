"""A worker killed with SIGKILL at random moments while 20,000 events flow: nothing lost, nothing twice.

After the last restart every case must have exactly its two notifications (the first-contact task raised by the
referral and the release) as `hub queue read` shows them; the raw copies on the topic (at-least-once
delivery) are counted and reported, not forbidden.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from connectors.avro import hub_codec
from connectors.publisher import event_from_json, message_key
from hub.processes import spawn, stop
from schemas import event_schemas
from tests.integration.conftest import HUB, Hub, new_hub
from tests.integration.waiting import eventually, read_topic, wait_until_healthy

CASES = 6_667  # three events each: 20,001 events
CODEC = hub_codec()
KILLS = 3
TODAY = date.today()


def slice_events(number: int, now: datetime) -> list[tuple[str, bytes, bytes | None]]:
    """(topic source, value, key) for one case: sentence, referral, release."""
    case_ref = f"K{number:07d}"
    noms = f"K{number % 10000:04d}{chr(65 + number // 10000 % 26)}{chr(65 + number // 260000 % 26)}"
    pnc = f"2020/{number:07d}K"
    events = [
        (
            "court",
            {
                "event_type": "SentenceImposed",
                "case_ref": case_ref,
                "noms_number": noms,
                "court_code": "Leeds Crown Court",
                "sentence_date": (TODAY - timedelta(days=3)).isoformat(),
                "offender": {"pnc": pnc},
                "offences": [{"code": "OF61016", "classification": "violent"}],
                "disposal": "custody",
                "custodial_term_months": 24,
            },
        ),
        (
            "witness-care",
            {
                "event_type": "VictimReferred",
                "case_ref": case_ref,
                "referral_date": TODAY.isoformat(),
                "victim": {
                    "person_ref": f"P-{number}",
                    "name": f"Victim {number}",
                    "address": {"postcode": "LS6 2AB"},
                },
            },
        ),
        (
            "prison",
            {
                "event_type": "PrisonerReleased",
                "noms_number": noms,
                "release_type": "automatic",
                "release_date": TODAY.isoformat(),
            },
        ),
    ]
    encoded = []
    for source, data in events:
        event = event_from_json(data, source, now)
        encoded.append(
            (
                source,
                CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump()),
                message_key(event),
            )
        )
    return encoded


def publish_all(hub: Hub, waves: list[list[tuple[str, bytes, bytes | None]]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=hub.env["HUB_BROKER"], acks="all", linger_ms=20)
        await producer.start()
        try:
            for wave in waves:
                futures = [
                    await producer.send(f"{hub.prefix}agency.{source}.events", value, key=key)
                    for source, value, key in wave
                ]
                await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


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
            lambda: read_topic(hub.env["HUB_BROKER"], topic, timeout=60),
            lambda found: len({r.value for r in found}) >= expected,
            timeout=300,
            interval=10,
        )
        time.sleep(5)
        queue = hub.read_queue("YH", timeout=3)
        raw = read_topic(hub.env["HUB_BROKER"], topic, timeout=60)
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
