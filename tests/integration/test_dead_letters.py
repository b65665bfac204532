"""Operators and dead letters: list with filters, show redacted, replay after a fix, purge; all audited."""

from __future__ import annotations

import asyncio
import getpass
import json

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connectors.publisher import AgencyPublisher
from hub.runtime.processes import spawn, stop
from hub.store.models import OperatorAction
from tests.integration.conftest import HUB, Hub
from tests.integration.test_walking_skeleton import publish_ok, referral, release, releases, sentence
from tests.integration.waiting import eventually, wait_until_healthy


def start_worker(hub: Hub, **env: str):
    log = hub.data_dir / "worker.log"
    process = spawn([*HUB, "worker"], log, env={**hub.env, **env})
    wait_until_healthy(f"{hub.web}/health", process, log, timeout=90)
    return process


def dlq(hub: Hub, *args: str) -> list[dict]:
    result = hub.run("dlq", "list", *args, "--actor", "test-operator")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_operator_finds_fixes_and_replays_a_dead_letter(hub: Hub) -> None:
    # A limit set too low dead-letters a perfectly good referral (its victim has a long accessibility note).
    big_referral = referral("01DL0000126", "WC-9", "Robin Victim", "LS6 2AB")
    big_referral["victim"]["accessibility_needs"] = "Needs large print and a call before any visit. " * 8
    worker = start_worker(hub, HUB_MAX_MESSAGE_BYTES="400")
    try:
        publish_ok(hub, "court", sentence("01DL0000126", "F1234GH"))
        publish_ok(hub, "witness-care", big_referral)

        async def garbage() -> None:
            async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
                await publisher.publish_raw(
                    f"{hub.prefix}agency.prison.events", b"not avro", signed_by="prison"
                )

        asyncio.run(garbage())
        listed = eventually(lambda: dlq(hub), lambda found: len(found) >= 2, timeout=30)
    finally:
        stop(worker, 10)

    assert sorted((d["source"], d["stage"], d["error_class"]) for d in listed) == [
        ("prison", "ingest", "UndecodableMessage"),
        ("witness-care", "ingest", "Rejected"),
    ]
    assert [d["source"] for d in dlq(hub, "--source", "witness-care")] == ["witness-care"]
    assert [d["error_class"] for d in dlq(hub, "--error-class", "UndecodableMessage")] == [
        "UndecodableMessage"
    ]
    assert dlq(hub, "--since", "2999-01-01T00:00:00") == []
    big = next(d for d in listed if d["source"] == "witness-care")
    assert "over the 400-byte limit" in big["reason"]
    assert "Robin" not in json.dumps(listed)

    shown = hub.run("dlq", "show", big["id"], "--actor", "test-operator")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["headers"]["hub.original.topic"].endswith("agency.witness-care.events")
    assert view["payload"]["event_type"] == "VictimReferred"
    victim = view["payload"]["event"]["victim"]
    assert victim["name"] == victim["accessibility_needs"] == "[hidden]"
    assert victim["address"] == {"lines": ["[hidden]"], "town": "[hidden]", "postcode": "[hidden]"}
    assert victim["person_ref"] == "WC-9"  # a reference, not contact details: operators need it to follow up
    assert "Robin" not in shown.stdout and "LS6" not in shown.stdout and "large print" not in shown.stdout

    # The limit is fixed; the operator replays the referral and the victim is back in the scheme.
    worker = start_worker(hub)
    try:
        replayed = hub.run("dlq", "replay", big["id"], "--actor", "test-operator")
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed 1" in replayed.stdout
        publish_ok(hub, "prison", release("F1234GH"))
        queue = eventually(lambda: hub.read_queue("YH"), lambda found: len(releases(found)) >= 1, timeout=30)
    finally:
        stop(worker, 10)
    assert [(n["person_ref"], n["victim_name"]) for n in releases(queue)] == [("WC-9", "Robin Victim")]

    refused = hub.run("dlq", "purge", "--source", "prison", "--actor", "test-operator", input="n\n")
    assert refused.returncode == 1 and len(dlq(hub, "--source", "prison")) == 1
    purged = hub.run("dlq", "purge", "--source", "prison", "--yes", "--actor", "test-operator")
    assert "purged 1" in purged.stdout
    assert dlq(hub, "--source", "prison") == []

    engine = create_engine(hub.env["HUB_DATABASE_URL"])
    with Session(engine) as session:
        actions = [
            (a.actor, a.action, a.count)
            for a in session.scalars(select(OperatorAction).order_by(OperatorAction.id))
        ]
    engine.dispose()
    # Each under the login that ran it, the name it gave, and the operations key that opened the dead letters.
    operations_key = next(hub.keys.operations.glob("*.key")).stem
    who = f"{getpass.getuser()} (as test-operator) with key {operations_key}"
    assert (who, "dlq.show", 1) in actions
    assert (who, "dlq.replay", 1) in actions
    assert (who, "dlq.purge", 1) in actions
    assert sum(1 for a in actions if a[1] == "dlq.list") >= 4
