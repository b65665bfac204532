"""Who may publish and who may read, tried as an attacker on the same machine would, against a real worker.

An impostor can reach the broker (the embedded one has no authentication): what stops them is the agencies'
signatures, checked by the worker, and the sealing of everything the worker writes for its reader's key.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connectors.keys import write_key_pair
from connectors.publisher import AgencyPublisher, event_from_json
from connectors.sealing import Sealer, sealed_key_id
from connectors.signatures import RecordSigner
from hub.store.models import OperatorAction
from tests.integration.conftest import Hub
from tests.integration.test_walking_skeleton import (
    allocation,
    publish_ok,
    referral,
    release,
    releases,
    sentence,
)
from tests.integration.waiting import eventually, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def hub(shared_hub: Hub, shared_worker) -> Hub:
    return shared_hub


def dead_letters(hub: Hub) -> list[dict]:
    result = hub.run("dlq", "list", "--actor", "test-operator")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_impostor_cannot_publish_as_an_agency(hub: Hub) -> None:
    case, noms = "01SC0000126", "S1234SC"
    publish_ok(hub, "court", sentence(case, noms))
    publish_ok(hub, "witness-care", referral(case, "WC-SC1", "Jamie Secure", "LS6 2AB"))
    publish_ok(hub, "vcs", allocation(case, "YH", "vlo-sec-1"))
    prison_topic = f"{hub.prefix}agency.prison.events"
    court_topic = f"{hub.prefix}agency.court.events"
    forged = event_from_json(release(noms), "prison", datetime.now(UTC))
    stranger = RecordSigner("prison", hub.signer("prison").key_id, Ed25519PrivateKey.generate())

    async def forge() -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            value = publisher.encode(forged)
            key = noms.encode()
            # No signature at all.
            await publisher.publish_raw(prison_topic, value, key=key)
            # The court's genuine key, on the prison's topic.
            await publisher.publish_raw(prison_topic, value, key=key, signed_by="court")
            # A key the prison never had, claiming the prison's key id.
            send = publisher._producer.send_and_wait  # noqa: SLF001 - the impostor's own producer
            await send(prison_topic, value, key=key, headers=stranger.headers(prison_topic, key, value))
            # A genuine prison signature, the record moved to the court's topic.
            await send(
                court_topic, value, key=key, headers=hub.signer("prison").headers(prison_topic, key, value)
            )

    asyncio.run(forge())
    found = eventually(
        lambda: [d for d in dead_letters(hub) if d["error_class"] == "Unauthenticated"],
        lambda letters: len(letters) >= 4,
        timeout=30,
    )
    assert sorted(d["source"] for d in found) == ["court", "prison", "prison", "prison"]
    reasons = " | ".join(d["reason"] for d in found)
    assert "not signed" in reasons
    assert f"{hub.signer('court').key_id}', which is not a key of agency prison" in reasons
    assert "does not match the record's topic, key and value" in reasons
    assert "Jamie" not in reasons
    assert releases([n for n in hub.read_queue("YH") if n["case_ref"] == case]) == []

    # The prison itself is heard: the case was ready, and only the impostors were refused.
    publish_ok(hub, "prison", release(noms))
    queue = eventually(
        lambda: [n for n in hub.read_queue("YH") if n["case_ref"] == case],
        lambda found: len(releases(found)) >= 1,
        timeout=30,
    )
    assert len(releases(queue)) == 1


def test_the_raw_topics_hold_no_victim_data_and_each_unit_reads_only_its_own(hub: Hub) -> None:
    case, noms = "02SC0000126", "S2345SC"
    publish_ok(hub, "court", sentence(case, noms))
    publish_ok(hub, "witness-care", referral(case, "WC-SC2", "Morgan Quietname", "LS6 2AB"))
    publish_ok(hub, "prison", release(noms))
    # A request forwarded to probation carries the VLO's words, which may name places: sealed like the rest.
    publish_ok(
        hub,
        "vcs",
        {
            "event_type": "LicenceConditionsRequested",
            "case_ref": case,
            "person_ref": "WC-SC2",
            "requested_at": datetime.now(UTC).isoformat(),
            "conditions": [
                {"kind": "exclusion_zone", "text": "Not to enter the exclusion zone by Private Road"}
            ],
        },
    )
    # A referral the hub cannot take (an unknown relationship, and not Avro at all), signed by witness care: a
    # dead letter that carries the victim's details too.
    bad = referral(case, "WC-SC3", "Morgan Quietname", "LS6 2AB")
    bad["victim"]["relationship"] = "neighbour"
    assert (
        hub.publish("witness-care", [bad], "--skip-invalid").returncode == 1
    )  # refused by the publisher too
    garbage = json.dumps(bad).encode()

    async def send_anyway() -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            topic = f"{hub.prefix}agency.witness-care.events"
            await publisher.publish_raw(topic, garbage, key=case.encode(), signed_by="witness-care")

    asyncio.run(send_anyway())
    queue = eventually(
        lambda: [n for n in hub.read_queue("YH") if n["case_ref"] == case],
        lambda found: len(releases(found)) >= 1,
        timeout=30,
    )
    assert any(n["victim_name"] == "Morgan Quietname" for n in queue)  # the unit reads it
    eventually(
        lambda: read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}hub.dlq"), lambda found: bool(found), 20
    )
    eventually(
        lambda: read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}outbound.probation"),
        lambda found: (
            sum(r.headers.count(("hub.record_type", b"LicenceConditionsRequestForwarded")) for r in found)
            >= 1
        ),
        20,
    )

    broker = hub.env["HUB_BROKER"]
    topics = ("vlo.YH", "hub.dlq", "outbound.probation", "outbound.prison")
    raw = [record for topic in topics for record in read_topic(broker, f"{hub.prefix}{topic}")]
    raw += [
        record for tier in range(1, 6) for record in read_topic(broker, f"{hub.prefix}hub.retry.{tier}", 1)
    ]
    blob = b"".join((record.value or b"") + b"".join(v for _, v in record.headers) for record in raw)
    for secret in (b"Quietname", b"Private Road", b"07700 900123", b"victim@example.org", b"exclusion zone"):
        assert secret not in blob, secret

    # Someone who knows Yorkshire's public key writes a false alarm onto its queue, claiming the hub's key id.
    recipient, hub_key = hub.keys.newest_sealing_key(hub.keys.unit("YH")), hub.keys.newest_sender_key()
    forged = Sealer(*recipient, hub_key[0], X25519PrivateKey.generate()).seal(b"forged: prisoner escaped")

    async def write_forged() -> None:
        async with AgencyPublisher(broker, signers={}) as writer:
            await writer.publish_raw(f"{hub.prefix}vlo.YH", forged, key=case.encode())

    asyncio.run(write_forged())
    read = hub.run("queue", "read", "--unit", "YH", "--from-beginning", "--timeout", "1")
    assert read.returncode == 0, read.stderr
    assert "forged" not in read.stdout and "not shown, not sealed by the hub" in read.stderr
    assert any(json.loads(line)["case_ref"] == case for line in read.stdout.splitlines())

    # Another unit's key opens nothing; the reader says which key was needed, with no traceback.
    yh_key = sealed_key_id(next(r.value for r in read_topic(broker, f"{hub.prefix}vlo.YH") if r.value))
    gm_key = next(hub.keys.unit("GM").glob("*.key"))
    wrong = hub.run(
        "queue", "read", "--unit", "YH", "--from-beginning", "--timeout", "1", "--key-file", str(gm_key)
    )
    assert wrong.returncode == 1
    assert yh_key in wrong.stderr and "not among the keys given" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "Quietname" not in wrong.stdout

    # Who read which queue with which key, refused attempts included, is in the audit.
    engine = create_engine(hub.env["HUB_DATABASE_URL"])
    with Session(engine) as session:
        reads = [
            (a.actor, a.target, a.count)
            for a in session.scalars(select(OperatorAction))
            if a.action == "queue.read"
        ]
    engine.dispose()
    assert any(yh_key in actor and count >= 1 for actor, _, count in reads)
    assert any(gm_key.stem in actor and "refused" in target and count == 0 for actor, target, count in reads)


def test_a_new_unit_key_seals_what_follows_and_the_old_one_still_opens_what_came_before(hub: Hub) -> None:
    case, noms = "03SC0000126", "S3456SC"
    publish_ok(hub, "court", sentence(case, noms))
    publish_ok(hub, "witness-care", referral(case, "WC-SC4", "Alex Rotated", "NE1 1AA"))
    eventually(lambda: hub.read_queue("NE"), lambda found: any(n["case_ref"] == case for n in found), 30)
    broker, topic = hub.env["HUB_BROKER"], f"{hub.prefix}vlo.NE"
    before = {sealed_key_id(r.value) for r in read_topic(broker, topic) if r.value}

    new_key = write_key_pair(hub.keys.unit("NE"), "sealing")
    publish_ok(hub, "prison", release(noms))
    eventually(
        lambda: {sealed_key_id(r.value) for r in read_topic(broker, topic) if r.value},
        lambda ids: new_key in ids,
        timeout=30,
    )
    queue = hub.read_queue("NE")  # the unit holds both keys: everything opens
    assert [n["event_type"] for n in queue if n["case_ref"] == case].count("PrisonerReleased") == 1
    assert new_key not in before

    # An agency's new key is accepted from its first record, beside the old one.
    made = hub.run("keys", "new", "--agency", "prison")
    assert made.returncode == 0, made.stderr
    assert hub.signer("prison").key_id in made.stdout
    publish_ok(hub, "prison", {**release(noms), "release_type": "on_appeal"})
    assert not [d for d in dead_letters(hub) if hub.signer("prison").key_id in d["reason"]]
