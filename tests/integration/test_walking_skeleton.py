"""One agency event's journey on real parts: `hub publish` -> Tansu -> `hub worker` -> `hub queue read`.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from connectors.avro import AvroCodec
from connectors.queue_reader import notification_json
from schemas import notification_schema
from tests.integration.conftest import Hub
from tests.integration.waiting import eventually, read_topic

TODAY = date.today()


def sentence(case_ref: str, noms: str, court: str = "Leeds Crown Court", months: int = 30) -> dict:
    return {
        "event_type": "SentenceImposed",
        "case_ref": case_ref,
        "noms_number": noms,
        "court_code": court,
        "sentence_date": (TODAY - timedelta(days=300)).isoformat(),
        # Each offender has their own PNC: a shared one would (rightly) link every case to one person.
        "offender": {"name": "Offender Name", "aliases": ["Alias Name"], "pnc": f"2019/{noms[1:5]}123K"},
        "offences": [{"code": "OF61016", "description": "Wounding with intent", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": months,
    }


def referral(case_ref: str, person_ref: str, name: str, postcode: str) -> dict:
    return {
        "event_type": "VictimReferred",
        "case_ref": case_ref,
        "victim": {
            "person_ref": person_ref,
            "name": name,
            "relationship": "victim",
            "address": {"lines": ["12 Private Road"], "town": "Somewhere", "postcode": postcode},
            "phone": "07700 900123",
            "email": "victim@example.org",
            "preferred_channel": "email",
            "language": "en",
        },
        "referral_date": (TODAY - timedelta(days=290)).isoformat(),
    }


def allocation(case_ref: str, unit: str, vlo: str) -> dict:
    return {"event_type": "CaseAllocated", "case_ref": case_ref, "unit_code": unit, "vlo_id": vlo}


def release(noms: str) -> dict:
    return {
        "event_type": "PrisonerReleased",
        "noms_number": noms,
        "release_type": "automatic",
        "release_date": TODAY.isoformat(),
        "licence_conditions": [
            {"text": "Not to enter the exclusion zone shown on the attached map", "victim_related": True},
            {"text": "Report to the supervising officer weekly", "victim_related": False},
        ],
        "release_address": {"lines": ["99 Hostel Lane"], "town": "Bradford", "postcode": "BD1 1AA"},
    }


@pytest.fixture
def hub(shared_hub: Hub, shared_worker) -> Hub:
    """One worker serves the whole module (per database); each test has its own cases, offenders and unit."""
    return shared_hub


def releases(found: list[dict]) -> list[dict]:
    return [n for n in found if n["event_type"] == "PrisonerReleased"]


def publish_ok(hub: Hub, source: str, *events: dict) -> None:
    result = hub.publish(source, list(events))
    assert result.returncode == 0, result.stderr


def test_release_reaches_the_allocated_vlo_once(hub: Hub) -> None:
    publish_ok(hub, "court", sentence("01WS0000126", "A1234BC"))
    publish_ok(hub, "witness-care", referral("01WS0000126", "WC-1", "Jane Victim", "LS6 2AB"))
    publish_ok(hub, "vcs", allocation("01WS0000126", "YH", "vlo-leeds-7"))
    publish_ok(hub, "prison", release("A1234BC"))

    # The release and the escalation of the overdue first contact (below) come separately: the escalation when
    # the worker's timer check next runs (every 5 s), which may be after the release is on the queue.
    queue = eventually(
        lambda: hub.read_queue("YH"),
        lambda found: len(releases(found)) >= 1 and any(n["event_type"] == "first_contact" for n in found),
        timeout=30,
    )

    assert len(releases(queue)) == 1, queue
    notification = releases(queue)[0]
    assert notification["kind"] == "event"
    assert notification["case_ref"] == "01WS0000126"
    assert notification["unit_code"] == "YH"
    assert notification["vlo_id"] == "vlo-leeds-7"
    assert notification["person_ref"] == "WC-1"
    assert notification["victim_name"] == "Jane Victim"
    assert notification["event_type"] == "PrisonerReleased"
    assert notification["category"] == "release"
    assert notification["priority"] == "normal"
    # The victim has not chosen categories yet, so the VLO records the release without informing them.
    assert notification["action"] == "record_only"
    assert notification["facts"]["release_date"] == TODAY.isoformat()
    assert notification["victim_conditions"] == ["Not to enter the exclusion zone shown on the attached map"]
    # The referral (before allocation, so to the unit's triage) asked for first contact, already overdue here,
    # so triage is told of that too.
    first_contact = [n for n in queue if n["event_type"] == "VictimReferred"]
    assert [(n["kind"], n["action"], n["vlo_id"]) for n in first_contact] == [("task", "task", None)]
    overdue = [n for n in queue if n["event_type"] == "first_contact"]
    assert [(n["kind"], n["vlo_id"], n["priority"]) for n in overdue] == [("escalation", None, "high")]
    text = str(queue)
    for withheld in ("Hostel Lane", "Bradford", "BD1", "Report to the supervising", "07700", "example.org"):
        assert withheld not in text


def test_redelivered_event_gives_no_second_notification(hub: Hub) -> None:
    first = release("B2345CD")
    publish_ok(hub, "court", sentence("02WS0000226", "B2345CD"))
    publish_ok(hub, "witness-care", referral("02WS0000226", "WC-2", "Sam Victim", "M1 1AE"))
    first["event_id"] = "7b0c6a52-5d0e-4c1f-9d64-1f1f3e0b9a11"
    publish_ok(hub, "prison", first)
    publish_ok(hub, "prison", first)  # the agency retried

    queue = eventually(lambda: hub.read_queue("GM"), lambda found: len(releases(found)) >= 1, timeout=30)
    raw = read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}vlo.GM", opener=hub.opener("GM"))

    assert len(releases(queue)) == 1
    # No duplicate written to the topic either. Counted by id on the records themselves: the overdue first-contact
    # escalation may land between the two reads.
    codec = AvroCodec([notification_schema()])
    written = [notification_json(codec, record.value)["notification_id"] for record in raw]
    assert len(written) == len(set(written))
    assert releases(queue)[0]["vlo_id"] is None  # not allocated yet: the unit's triage picks it up


def parked(hub: Hub) -> list[dict]:
    result = hub.run("parked", "list")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_release_before_the_sentence_is_parked_then_routed(hub: Hub) -> None:
    publish_ok(hub, "prison", release("C3456DE"))

    def mine() -> list[dict]:
        return [p for p in parked(hub) if "noms_number=C3456DE" in p["waiting_for"]]

    waiting = eventually(mine, lambda found: len(found) == 1, timeout=20)
    assert [(p["event_type"], p["source"], p["waiting_for"]) for p in waiting] == [
        ("PrisonerReleased", "prison", ["noms_number=C3456DE"])
    ]
    assert "Hostel" not in str(waiting)

    publish_ok(hub, "court", sentence("03WS0000326", "C3456DE", court="Cardiff Crown Court"))

    queue = eventually(lambda: hub.read_queue("WAL"), lambda found: len(releases(found)) >= 1, timeout=30)

    # No victim is referred yet: the unit covering the sentencing court owns the case and is told.
    assert [(n["event_type"], n["person_ref"], n["action"]) for n in releases(queue)] == [
        ("PrisonerReleased", None, "record_only")
    ]
    assert mine() == []


def test_garbage_goes_to_the_dead_letter_topic_and_the_next_event_is_routed(hub: Hub) -> None:
    import asyncio

    from connectors.publisher import AgencyPublisher

    async def send_garbage() -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            await publisher.publish_raw(
                f"{hub.prefix}agency.prison.events", b"\x00not avro at all", key=b"k1", signed_by="prison"
            )
            await publisher.publish_raw(
                f"{hub.prefix}agency.prison.events", b"\xc3\x01" + b"\x11" * 8 + b"x", signed_by="prison"
            )

    asyncio.run(send_garbage())
    publish_ok(hub, "court", sentence("04WS0000426", "D4567EF"))
    publish_ok(hub, "witness-care", referral("04WS0000426", "WC-4", "Alex Victim", "NE1 4ST"))
    publish_ok(hub, "prison", release("D4567EF"))

    queue = eventually(lambda: hub.read_queue("NE"), lambda found: len(releases(found)) >= 1, timeout=30)
    garbage = {b"\x00not avro at all", b"\xc3\x01" + b"\x11" * 8 + b"x"}
    dead = eventually(
        lambda: [
            r
            for r in read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}hub.dlq", opener=hub.opener())
            if r.value in garbage
        ],
        lambda found: len(found) >= 2,
        timeout=15,
    )

    assert len(releases(queue)) == 1
    assert len(dead) == 2
    by_value = {record.value: dict(record.headers) for record in dead}
    first = by_value[b"\x00not avro at all"]
    assert first["hub.original.topic"] == f"{hub.prefix}agency.prison.events".encode()
    assert first["hub.error.stage"] == b"ingest"
    assert first["hub.error.class"] == b"UndecodableMessage"
    assert b"marker" in first["hub.error.message"]
    for header in (
        "hub.original.partition",
        "hub.original.offset",
        "hub.original.timestamp",
        "hub.attempts",
        "hub.first_failure_at",
        "hub.last_failure_at",
    ):
        assert header in first
    second = by_value[b"\xc3\x01" + b"\x11" * 8 + b"x"]
    assert b"unknown writer schema fingerprint" in second["hub.error.message"]
    assert [r.key for r in dead if r.value == b"\x00not avro at all"] == [b"k1"]  # original key kept


def test_forged_source_is_dead_lettered(hub: Hub) -> None:
    import asyncio
    from datetime import UTC, datetime

    from connectors.publisher import AgencyPublisher, event_from_json, message_key

    # A prison system claiming to be a court, under its own (prison) key: valid Avro, signed, wrong channel.
    event = event_from_json(sentence("05WS0000526", "E5678FG"), "court", datetime.now(UTC))

    async def send() -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            topic = f"{hub.prefix}agency.prison.events"
            await publisher.publish_raw(
                topic, publisher.encode(event), key=message_key(event), signed_by="prison"
            )

    asyncio.run(send())
    dead = eventually(
        lambda: [
            r
            for r in read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}hub.dlq", opener=hub.opener())
            if r.key == b"05WS0000526"
        ],
        lambda found: len(found) >= 1,
        timeout=20,
    )

    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["hub.error.class"] == b"InvalidEvent"
    assert b"envelope.source.agency" in headers["hub.error.message"]
