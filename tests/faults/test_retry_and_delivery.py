"""Transient failures off the main path, in order per key, and HTTP delivery to a failing endpoint.

One worker for the module (SQLite), configured with a schema registry the tests can make fail, a short retry
ladder, and an HTTP endpoint for the North East unit that checks every request's signature and refuses half
of the signed ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from connectors.avro import AvroCodec
from connectors.publisher import event_from_json, message_key
from connectors.queue_reader import notification_json
from connectors.registry import SchemaRegistry, value_subject
from connectors.webhook_signature import SECRET_PREFIX
from schemas import event_schemas, notification_schema
from tests.faults.cases import CODEC, Encoded, escape, identifiers, publish_all, slice_events
from tests.faults.http_receiver import Receiver, running_receiver
from tests.integration.conftest import Hub, new_hub, running_worker
from tests.integration.waiting import eventually, metrics_text, read_topic, scrape
from tests.registry_server import RegistryServer, running_registry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LADDER = [3, 6, 12]  # seconds: a message still failing after ~21 s is a dead letter
NOTIFICATIONS = AvroCodec([notification_schema()])


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with running_registry() as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver(failure_share=0.5) as running:
        yield running


@pytest.fixture(scope="module")
def faulty(
    broker: str, registry: RegistryServer, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    directory = tmp_path_factory.mktemp("faulty")
    hub = new_hub(broker, f"sqlite:///{directory / 'hub.db'}", directory)
    hub.env.update(
        HUB_SCHEMA_REGISTRY_URL=registry.url,
        HUB_RETRY_DELAYS_SECONDS=json.dumps(LADDER),
        HUB_HTTP_ENDPOINTS=json.dumps({"NE": receiver.url}),
        HUB_HTTP_SECRETS=json.dumps({"NE": receiver.secret}),
        HUB_HTTP_ATTEMPTS="4",
        HUB_HTTP_BACKOFF_SECONDS="0.05",
    )
    receiver.opener = hub.opener("NE")  # the unit's system holds the unit's key
    for _ in running_worker(hub):
        yield hub


def queue(hub: Hub, unit: str) -> list[dict]:
    """Notifications on a unit's topic in offset order per partition (duplicates kept)."""
    records = read_topic(
        hub.env["HUB_BROKER"], f"{hub.prefix}vlo.{unit}", timeout=20, opener=hub.opener(unit)
    )
    return [n for n in (notification_json(NOTIFICATIONS, r.value) for r in records) if n is not None]


def confluent(registry: RegistryServer, hub: Hub, data: dict, now: datetime) -> Encoded:
    """A prison event in Confluent framing, its schema registered now (the worker has not fetched it yet)."""
    event = event_from_json(data, "prison", now)
    schema = event_schemas()[event.envelope.event_type]
    subject = value_subject(f"{hub.prefix}agency.prison.events")
    schema_id = SchemaRegistry(registry.url, timeout=5.0).register(subject, schema)
    return "prison", CODEC.encode_confluent(schema, event.model_dump(), schema_id), message_key(event)


def of_case(notifications: list[dict], case_ref: str, *event_types: str) -> list[str]:
    return [
        n["event_type"] for n in notifications if n["case_ref"] == case_ref and n["event_type"] in event_types
    ]


def test_an_event_in_retry_holds_back_later_events_of_its_key_and_nothing_else(
    faulty: Hub, registry: RegistryServer
) -> None:
    now = datetime.now(UTC)
    case_ref, noms, _ = identifiers(9000)
    publish_all(faulty, [slice_events(9000, now)[:2]])
    eventually(lambda: queue(faulty, "YH"), lambda found: of_case(found, case_ref, "VictimReferred"), 60)

    moved = confluent(
        registry,
        faulty,
        {
            "event_type": "PrisonerRecategorised",
            "noms_number": noms,
            "from_category": "C",
            "to_category": "D",
            "from_conditions": "closed",
            "to_conditions": "open",
            "effective_date": now.date().isoformat(),
        },
        now,
    )
    escaped = escape(9000, now)
    others = [event for n in range(9001, 9011) for event in slice_events(n, now)[:2]]
    registry.state.failing = 500  # the registry in trouble: the recategorisation cannot be read for now
    try:
        publish_all(faulty, [[moved, escaped], others])
        # The events behind it on other keys are not held back...
        found = eventually(
            lambda: queue(faulty, "YH"),
            lambda found: all(of_case(found, identifiers(n)[0], "VictimReferred") for n in range(9001, 9011)),
            timeout=15,
        )
        # ...but the escape, published after the recategorisation under the same key, waits behind it.
        assert of_case(found, case_ref, "PrisonerRecategorised", "PrisonerEscaped") == []
        assert scrape(faulty.web, "hub_retries_total", tier="1") >= 1
        # What waits in the ladder is also in the case store, for a broker that loses its topics.
        assert retry_copies(faulty) >= 2
    finally:
        registry.state.failing = None

    found = eventually(
        lambda: queue(faulty, "YH"),
        lambda found: len(of_case(found, case_ref, "PrisonerRecategorised", "PrisonerEscaped")) >= 2,
        timeout=60,
    )
    assert of_case(found, case_ref, "PrisonerRecategorised", "PrisonerEscaped")[:2] == [
        "PrisonerRecategorised",
        "PrisonerEscaped",
    ]
    # Once the ladder has taken them, their copies are no longer kept.
    assert eventually(lambda: retry_copies(faulty), lambda count: count == 0, timeout=30) == 0


def retry_copies(hub: Hub) -> int:
    engine = create_engine(hub.env["HUB_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM retry_copies")).scalar_one()
    finally:
        engine.dispose()


def test_a_message_failing_past_the_ladder_is_a_dead_letter_with_its_history(
    faulty: Hub, registry: RegistryServer
) -> None:
    now = datetime.now(UTC)
    case_ref, noms, _ = identifiers(9050)
    publish_all(faulty, [slice_events(9050, now)[:2]])
    transferred = confluent(
        registry,
        faulty,
        {
            "event_type": "PrisonerTransferred",
            "noms_number": noms,
            "from_prison": "LEI",
            "to_prison": "HMI",
            "from_conditions": "closed",
            "to_conditions": "closed",
            "transferred_at": now.isoformat(),
        },
        now,
    )
    registry.state.failing = 503
    try:
        publish_all(faulty, [[transferred]])
        letters = eventually(
            lambda: read_topic(
                faulty.env["HUB_BROKER"], f"{faulty.prefix}hub.dlq", timeout=5, opener=faulty.opener()
            ),
            lambda found: any(r.value == transferred[1] for r in found),
            timeout=90,
            interval=2,
        )
    finally:
        registry.state.failing = None

    letter = next(r for r in letters if r.value == transferred[1])
    headers = {k: v.decode("utf-8", "replace") for k, v in letter.headers}
    history = json.loads(headers["hub.retry.history"])
    first, last = (
        datetime.fromisoformat(headers[h]) for h in ("hub.first_failure_at", "hub.last_failure_at")
    )
    assert letter.key == transferred[2]  # the original key, value untouched
    assert headers["hub.original.topic"] == f"{faulty.prefix}agency.prison.events"
    assert headers["hub.error.stage"] == "ingest"
    assert headers["hub.error.class"] == "RegistryUnavailable"
    assert headers["hub.attempts"] == str(len(LADDER) + 1)
    assert [f["tier"] for f in history] == [0, 1, 2, 3]
    assert (last - first).total_seconds() >= 0.8 * sum(LADDER)
    assert not any(k.startswith("hub.retry.not_before") for k in headers)


def test_a_unit_endpoint_failing_half_its_requests_gets_every_notification_or_a_dead_letter(
    faulty: Hub, receiver: Receiver
) -> None:
    now = datetime.now(UTC)
    cases = range(9100, 9200)
    slices = [slice_events(n, now, court="Newcastle Crown Court", postcode="NE1 4ST") for n in cases]
    publish_all(faulty, [[e for s in slices for e in s[:2]], [s[2] for s in slices]])
    expected = 2 * len(cases)  # the first-contact task and the release, per case

    def settled() -> tuple[set[str], set[str]]:
        on_queue = {n["notification_id"] for n in queue(faulty, "NE")}
        letters = read_topic(
            faulty.env["HUB_BROKER"], f"{faulty.prefix}hub.dlq", timeout=5, opener=faulty.opener()
        )
        # A notification that failed delivery is still sealed for its unit inside the dead letter: it names itself
        # in the header it had on the queue.
        dead = {
            dict(r.headers)["notification_id"].decode()
            for r in letters
            if dict(r.headers).get("hub.error.stage") == b"deliver"
        }
        return on_queue, dead

    on_queue, dead = eventually(
        settled,
        lambda found: len(found[0]) >= expected and found[0] <= set(receiver.delivered) | found[1],
        timeout=120,
        interval=2,
    )
    undelivered = on_queue - set(receiver.delivered) - dead
    text_failed = scrape(faulty.web, "hub_http_deliveries_total", unit="NE", outcome="failed")
    text_delivered = scrape(faulty.web, "hub_http_deliveries_total", unit="NE", outcome="delivered")
    print(
        f"\n{len(on_queue)} notifications for NE; {receiver.attempts} requests, {receiver.refused} refused; "
        f"delivered {len(set(receiver.delivered) & on_queue)}, dead letters {len(dead)}"
    )
    assert len(on_queue) == expected
    assert undelivered == set()
    assert receiver.refused > 0 and len(dead) > 0  # half failing with 4 attempts: about 1 in 16 runs out
    assert receiver.mismatched_keys == 0  # every request names its notification as the Idempotency-Key
    assert receiver.unreadable == 0  # and the unit's key opens each to the notification it names
    # Every request carried a valid, fresh signature of its exact body under the unit's secret.
    assert receiver.unverified == 0
    assert receiver.attempts == receiver.refused + sum(receiver.delivered.values())
    # Nor does the secret show in the worker's log or its metrics.
    seen = (faulty.data_dir / "worker.log").read_text(errors="replace") + metrics_text(faulty.web)
    assert receiver.secret not in seen and receiver.secret.removeprefix(SECRET_PREFIX) not in seen
    assert text_failed == receiver.refused
    assert text_delivered == sum(receiver.delivered.values())

    # An operator looking at one of them sees why and how often it failed, not who it is about.
    letters = read_topic(
        faulty.env["HUB_BROKER"], f"{faulty.prefix}hub.dlq", timeout=5, opener=faulty.opener()
    )
    letter = next(r for r in letters if dict(r.headers).get("hub.error.stage") == b"deliver")
    shown = faulty.run("dlq", "show", f"{letter.partition}:{letter.offset}", "--actor", "ops-test")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["stage"] == "deliver" and view["error_class"] == "HTTP503"
    assert view["headers"]["hub.attempts"] == "4"
    # Still sealed for the unit inside: operators see which key, never the notification.
    assert view["payload"]["sealed_for_key"] in {p.stem for p in faulty.keys.unit("NE").glob("*.pub")}
    assert "Victim 9" not in shown.stdout
