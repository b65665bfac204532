"""What the console reads from the case store, on SQLite and PostgreSQL: the right rows, counted in full, and
nothing about a victim but unit codes and references."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from hub.console import queries
from hub.store.engine import make_engine
from hub.store.models import (
    Case,
    Notification,
    Offender,
    OperatorAction,
    ParkedEvent,
    ProcessedEvent,
    PurgedDeadLetter,
    Timer,
    Victim,
)
from tests.data_keys import data_keys_in

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def notification(notification_id: str, unit: str, priority: str, **fields: object) -> Notification:
    values = {
        "notification_id": notification_id,
        "kind": "event",
        "unit_code": unit,
        "event_type": "PrisonerEscaped",
        "action": "safety_review",
        "priority": priority,
        "topic": f"vlo.{unit}",
        "key": b"01QY0000126",
        "payload": b"Robin Victim, 12 Private Road",
        "created_at": NOW - timedelta(minutes=20),
        "published_at": NOW - timedelta(minutes=20),
        **fields,
    }
    return Notification(**values)


def test_the_console_lists_what_operators_must_act_on(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    with Session(engine) as session, session.begin():
        offender = Offender()
        session.add(offender)
        session.flush()
        case = Case(
            case_ref="01QY0000126",
            offender_id=offender.id,
            eligibility_status="statutory",
            eligibility_rule="custodial_12_months_or_more",
            eligibility_basis="test",
            owning_unit_code="YH",
            opened_at=NOW - timedelta(days=400),
        )
        session.add(case)
        session.flush()
        victim = Victim(
            case_id=case.id,
            person_ref="WC-1",
            name="Robin Victim",
            relationship_to_offence="victim",
            postcode="NE1 1AA",
            unit_code="NE",
        )
        session.add(victim)
        session.flush()

        def timer(kind: str, cause: str, due: timedelta, **fields: object) -> Timer:
            return Timer(
                kind=kind,
                case_id=case.id,
                victim_id=victim.id,
                cause=cause,
                due_at=NOW - due,
                started_at=NOW - timedelta(days=60),
                **fields,
            )

        session.add_all(
            [
                timer("first_contact", "a", timedelta(hours=2)),  # the worker is behind: not fired
                timer("annual_update", "b", timedelta(days=2), fired_at=NOW - timedelta(days=2)),  # escalated
                timer(
                    "referral_overdue", "c", timedelta(days=30), fired_at=NOW - timedelta(days=30)
                ),  # long ago
                timer("annual_update", "d", timedelta(seconds=10)),  # between two timer checks
                timer("first_contact", "e", timedelta(days=1), stopped_at=NOW - timedelta(days=3)),  # stopped
                timer("first_contact", "f", -timedelta(days=5)),  # not due yet
                timer(
                    "urgent_unacknowledged",
                    "n-escalated",
                    timedelta(minutes=1),
                    fired_at=NOW - timedelta(minutes=1),
                ),
                notification("n-escalated", "NE", "urgent", case_id=case.id, person_ref="WC-1"),
                notification(
                    "n-waiting", "NE", "urgent", created_at=NOW - timedelta(minutes=5), published_at=None
                ),
                notification("n-acknowledged", "NE", "urgent", acknowledged_at=NOW - timedelta(minutes=1)),
                notification("n-withdrawn", "NE", "urgent", withdrawn_at=NOW - timedelta(minutes=1)),
                notification("n-routine", "NE", "normal"),
                ParkedEvent(
                    event_id="p-1",
                    event_type="PrisonerReleased",
                    source="prison",
                    topic="agency.prison.events",
                    payload=b"Robin Victim",
                    published_at=NOW - timedelta(hours=3),
                    parked_at=NOW - timedelta(hours=3),
                ),
                ParkedEvent(
                    event_id="p-2",
                    event_type="VictimReferred",
                    source="witness-care",
                    topic="agency.witness-care.events",
                    payload=b"Robin Victim",
                    published_at=NOW - timedelta(minutes=1),
                    parked_at=NOW - timedelta(minutes=1),
                ),
                OperatorAction(
                    at=NOW - timedelta(days=1), actor="alice", action="dlq.replay", target="0:4 1:7", count=2
                ),
                OperatorAction(
                    at=NOW - timedelta(hours=1), actor="bob", action="dlq.replay", target="1:7", count=1
                ),
                OperatorAction(
                    at=NOW - timedelta(days=90), actor="carol", action="dlq.replay", target="2:2", count=1
                ),
                OperatorAction(at=NOW, actor="dave", action="dlq.purge", target="3:3", count=1),
                PurgedDeadLetter(partition=3, offset=3, purged_at=NOW),
                ProcessedEvent(
                    event_id="e-1",
                    event_type="SentenceImposed",
                    source="court",
                    processed_at=NOW - timedelta(hours=2),
                ),
                ProcessedEvent(
                    event_id="e-2",
                    event_type="SentenceImposed",
                    source="court",
                    processed_at=NOW - timedelta(minutes=3),
                ),
                ProcessedEvent(
                    event_id="e-3",
                    event_type="PrisonerReleased",
                    source="prison",
                    processed_at=NOW - timedelta(days=1),
                ),
            ]
        )

    overdue = queries.overdue(engine, NOW)
    urgent = queries.urgent_unacknowledged(engine, NOW)
    parked = queries.parked(engine, NOW)
    replayed = queries.replayed_dead_letters(engine, NOW)
    purged = queries.purged_dead_letters(engine)
    last = queries.last_event_per_source(engine)
    engine.dispose()

    assert (overdue["waiting"], overdue["escalated"]) == (1, 1)
    assert [(i["timer"], i["unit"], i["escalated_seconds_ago"]) for i in overdue["items"]] == [
        ("first_contact", "NE", None),  # not fired first: the hub itself is late with it
        ("annual_update", "NE", 2 * 86400),
    ]
    assert urgent["total"] == 2 and urgent["escalated"] == 1
    assert [(i["notification_id"], i["unit"], i["age_seconds"], i["escalated"]) for i in urgent["items"]] == [
        ("n-escalated", "NE", 1200, True),
        ("n-waiting", "NE", 300, False),
    ]
    assert parked["total"] == 2 and parked["oldest_age_seconds"] == 3 * 3600
    assert [(i["event_type"], i["source"]) for i in parked["items"]] == [
        ("PrisonerReleased", "prison"),
        ("VictimReferred", "witness-care"),
    ]
    assert {k: v.by for k, v in replayed.items()} == {"0:4": "alice", "1:7": "bob"}
    assert purged == {(3, 3)}
    assert last == {"court": NOW - timedelta(minutes=3), "prison": NOW - timedelta(days=1)}
    shown = json.dumps([overdue, urgent, parked], default=str)
    assert "Robin" not in shown and "Private Road" not in shown and "NE1" not in shown and "01QY" not in shown
