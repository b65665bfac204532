"""The retention schedule (hub/store/retention.py) on a real database, SQLite and PostgreSQL, with a clock moved
by hand: what is past its period leaves the store (or its personal data does), what is not stays, a dry run
changes nothing, and every batch is audited. The last test runs `hub retention run` against the real broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.keys import read_data_keys
from connectors.publisher import event_from_json
from connectors.signatures import KEY_ID_HEADER, SIGNATURE_HEADER
from hub.messages import InboundMessage, OutboundRecord
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import Settings
from hub.store.encryption import DataKeys
from hub.store.engine import make_engine
from hub.store.models import (
    Case,
    ConsoleSignOut,
    DeadLetterCopy,
    FailedSignIn,
    Notification,
    OperatorAction,
    ParkedEvent,
    ParkedEventKey,
    ProcessedEvent,
    PurgedDeadLetter,
    ReaderProgress,
    Timer,
    Victim,
)
from hub.store.retention import Retention
from schemas import event_schemas
from tests.data_keys import data_keys_in
from tests.integration.conftest import Hub

CODEC = hub_codec()
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PERSONAL = ("name", "postcode", "language", "preferred_channel", "accessibility_needs")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Store:
    """A pipeline and the retention schedule on one case store, both on the same hand-moved clock."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.pipeline = Pipeline(settings, engine, CODEC, load_units(settings), clock=clock)
        self.retention = Retention(settings, engine, clock=clock)
        self.sent: list[OutboundRecord] = []

    def publish(self, source: str, data: dict[str, Any], **message: Any) -> InboundMessage:
        event = event_from_json(data, source, self.clock.now)
        value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
        inbound = InboundMessage(
            self.settings.topic_for(source, event.envelope.event_type), 0, 0, None, message.get("key"), value,
            message.get("headers", []),
        )  # fmt: skip
        result = self.pipeline.process([inbound])
        assert result.dead_letters == [] and result.transient == []
        return inbound

    async def send(self, records: list[OutboundRecord]) -> None:
        self.sent.extend(records)

    def run(self, at: datetime) -> dict[str, Any]:
        import asyncio

        self.clock.now = at
        return {report.step: report for report in asyncio.run(self.retention.run(self.send))}

    def due(self, at: datetime) -> dict[str, Any]:
        self.clock.now = at
        return {report.step: report for report in self.retention.due()}

    def audit(self, action: str) -> list[OperatorAction]:
        with Session(self.engine) as session:
            query = select(OperatorAction).where(OperatorAction.action == action).order_by(OperatorAction.id)
            return list(session.scalars(query))


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="x.", retention_batch=2)
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    yield Store(settings, engine, Clock(T0))
    engine.dispose()


def sentenced(case_ref: str, noms: str) -> dict[str, Any]:
    return {
        "event_type": "SentenceImposed",
        "case_ref": case_ref,
        "noms_number": noms,
        "court_code": "Leeds Crown Court",
        "sentence_date": (T0 - 30 * DAY).date().isoformat(),
        "offences": [{"code": "OF61016", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 24,
    }


def referred(case_ref: str, person_ref: str, name: str, postcode: str) -> dict[str, Any]:
    return {
        "event_type": "VictimReferred",
        "case_ref": case_ref,
        "referral_date": T0.date().isoformat(),
        "victim": {
            "person_ref": person_ref,
            "name": name,
            "address": {"postcode": postcode},
            "language": "cy",
            "preferred_channel": "phone",
            "accessibility_needs": f"Large print for {name}",
        },
    }


def released(noms: str, on: date) -> dict[str, Any]:
    return {
        "event_type": "PrisonerReleased",
        "noms_number": noms,
        "release_type": "automatic",
        "release_date": on.isoformat(),
    }


def raw_victims(engine: Engine, case_ref: str) -> list[dict[str, Any]]:
    """As stored: the columns themselves, not what the encrypting types make of them."""
    query = text(
        "SELECT v.name, v.postcode, v.language, v.preferred_channel, v.accessibility_needs, v.anonymised_reason "
        "FROM victims v JOIN cases c ON c.id = v.case_id WHERE c.case_ref = :ref"
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query, {"ref": case_ref})]


def raw_payloads(engine: Engine, case_ref: str) -> list[bytes | None]:
    query = text(
        "SELECT n.payload FROM notifications n JOIN cases c ON c.id = n.case_id WHERE c.case_ref = :ref"
    )
    with engine.connect() as connection:
        return [row.payload for row in connection.execute(query, {"ref": case_ref})]


def everything_readable(engine: Engine) -> str:
    """Every encrypted value in the store, decrypted: where a name would be if it were still kept."""
    with Session(engine) as session:
        victims = [getattr(v, field) for v in session.scalars(select(Victim)) for field in PERSONAL]
        payloads = [n.payload for n in session.scalars(select(Notification))]
        parked = [p.payload for p in session.scalars(select(ParkedEvent))]
    texts = [value for value in victims if value]
    texts += [value.decode("utf-8", "replace") for value in [*payloads, *parked] if value]
    return "\n".join(texts)


def test_a_closed_case_past_its_retention_keeps_no_personal_data(store: Store) -> None:
    store.publish("court", sentenced("01RT0000126", "A1111RT"))
    store.publish("witness-care", referred("01RT0000126", "WC-RT-1", "Alice Closedcase", "LS6 2AB"))
    store.publish("court", sentenced("02RT0000126", "B2222RT"))
    store.publish("witness-care", referred("02RT0000126", "WC-RT-2", "Bob Opencase", "YO1 7HH"))
    store.publish(
        "vcs",
        {"event_type": "VictimOptedOut", "case_ref": "02RT0000126", "person_ref": "WC-RT-2",
         "opted_out_date": T0.date().isoformat()},
    )  # fmt: skip
    store.clock.now = T0 + DAY
    store.publish("prison", released("A1111RT", (T0 + DAY).date()))
    store.publish(
        "prison", {"event_type": "PrisonerDied", "noms_number": "A1111RT", "date_of_death": "2026-03-03"}
    )
    with Session(store.engine) as session:
        closed = session.scalars(select(Case).where(Case.case_ref == "01RT0000126")).one()
        assert (closed.status, closed.closed_at) == ("closed", T0 + DAY)
        timers = session.scalar(select(func.count()).select_from(Timer).where(Timer.case_id == closed.id))
    assert timers and all(payload is not None for payload in raw_payloads(store.engine, "01RT0000126"))

    # Not yet: 89 days after it closed.
    assert store.run(T0 + DAY + 89 * DAY)["victim_data"].count == 0
    assert "Alice Closedcase" in everything_readable(store.engine)

    # A dry run lists the case and changes nothing.
    due = store.due(T0 + DAY + 91 * DAY)["victim_data"]
    assert (due.count, due.ids) == (1, ["01RT0000126"])
    assert all(row["name"] is not None for row in raw_victims(store.engine, "01RT0000126"))

    done = store.run(T0 + DAY + 91 * DAY)["victim_data"]
    assert (done.count, done.ids) == (1, ["01RT0000126"])
    assert done.changes["victims anonymised"] == 1 and done.changes["timers deleted"] == timers
    assert raw_victims(store.engine, "01RT0000126") == [
        dict.fromkeys(PERSONAL) | {"anonymised_reason": "retention"}
    ]
    assert raw_payloads(store.engine, "01RT0000126") and not any(raw_payloads(store.engine, "01RT0000126"))
    readable = everything_readable(store.engine)
    assert "Alice" not in readable and "LS6 2AB" not in readable
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(Timer).where(Timer.case_id == closed.id)) == 0
        anonymised = session.scalars(select(Victim).where(Victim.person_ref == "WC-RT-1")).one()
        assert anonymised.anonymised_at == T0 + 92 * DAY
        # The open case's victim opted out, and is kept: an urgent escalation still reaches their VLO.
        kept = session.scalars(select(Victim).where(Victim.person_ref == "WC-RT-2")).one()
        assert (kept.opted_out, kept.name, kept.postcode, kept.anonymised_at) == (
            True,
            "Bob Opencase",
            "YO1 7HH",
            None,
        )

    [audited] = store.audit("retention.victim_data")
    assert (audited.actor, audited.count) == ("retention", 1)
    assert "01RT0000126" in audited.target and "Alice" not in audited.target
    # Nothing is due twice.
    assert store.run(T0 + DAY + 92 * DAY)["victim_data"].count == 0


def test_closed_cases_are_dealt_with_a_batch_at_a_time_each_batch_audited(store: Store) -> None:
    refs = [f"0{n}RB0000126" for n in range(4, 7)]
    for n, ref in enumerate(refs):
        store.publish("court", sentenced(ref, f"D{n}444RB"))
        store.publish("witness-care", referred(ref, f"WC-RB-{n}", f"Dana Batch{n}", "LS6 2AB"))
        store.publish(
            "prison",
            {"event_type": "PrisonerDied", "noms_number": f"D{n}444RB", "date_of_death": "2026-03-01"},
        )

    done = store.run(T0 + 91 * DAY)["victim_data"]  # HUB_RETENTION_BATCH=2 here

    assert (done.count, sorted(done.ids)) == (3, refs)
    assert [a.count for a in store.audit("retention.victim_data")] == [2, 1]
    assert all(row["name"] is None for ref in refs for row in raw_victims(store.engine, ref))
    assert "Dana" not in everything_readable(store.engine)


def test_payloads_go_once_past_the_queue_retention_and_event_ids_once_no_duplicate_can_come(
    store: Store,
) -> None:
    store.publish("court", sentenced("03RT0000126", "C3333RT"))
    for n in range(3):
        store.publish("witness-care", referred("03RT0000126", f"WC-RT-3{n}", f"Carol Payload{n}", "LS6 2AB"))
    with Session(store.engine) as session, session.begin():
        ids = sorted(session.scalars(select(Notification.notification_id)))
        assert len(ids) == 3
        published, withdrawn, outbox = ids
        for notification_id, values in (
            (published, {"published_at": T0}),
            (withdrawn, {"withdrawn_at": T0}),  # withdrawn before it reached its queue
        ):
            session.execute(
                update(Notification).where(Notification.notification_id == notification_id).values(**values)
            )

    assert store.due(T0 + 29 * DAY)["notification_payloads"].count == 0
    due = store.due(T0 + 31 * DAY)["notification_payloads"]
    assert (due.count, sorted(due.ids)) == (2, sorted([published, withdrawn]))
    store.run(T0 + 31 * DAY)
    with Session(store.engine) as session:
        rows = session.execute(select(Notification.notification_id, Notification.payload))
        payloads = {notification_id: payload for notification_id, payload in rows}
    assert payloads[published] is None and payloads[withdrawn] is None
    assert payloads[outbox] is not None  # still owed to its queue
    assert [a.count for a in store.audit("retention.notification_payloads")] == [2]

    # A notification without its payload is never sent again, by the outbox sweep nor to a queue put back.
    with Session(store.engine) as session, session.begin():
        session.execute(
            update(Notification).where(Notification.notification_id == outbox).values(payload=None)
        )
    store.clock.now = T0 + 32 * DAY
    assert store.pipeline.pending_outbox() == []

    # Applied events' ids: kept 35 days, then deleted two at a time (HUB_RETENTION_BATCH=2 here), each batch audited.
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 4
    assert store.run(T0 + 34 * DAY)["processed_events"].count == 0
    done = store.run(T0 + 36 * DAY)["processed_events"]
    assert done.count == 4
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0
    assert [a.count for a in store.audit("retention.processed_events")] == [2, 2]


def test_a_parked_event_no_case_claimed_becomes_a_dead_letter_and_leaves_the_store(store: Store) -> None:
    signature = [(KEY_ID_HEADER, b"court-key"), (SIGNATURE_HEADER, b"\x01\x02")]
    parked = store.publish(
        "prison",
        {
            **released("Z9999RT", T0.date()),
            "release_address": {"lines": ["1 Hidden Way"], "postcode": "LS1 1AA"},
        },
        key=b"Z9999RT",
        headers=signature,
    )
    with Session(store.engine) as session:
        [event_id] = session.scalars(select(ParkedEvent.event_id))

    assert store.run(T0 + 29 * DAY)["parked_events"].count == 0
    due = store.due(T0 + 31 * DAY)["parked_events"]
    assert (due.count, due.ids) == (1, [event_id])
    assert store.sent == [] and store.pipeline.parked_summary()[0] == 1

    # The broker away: nothing leaves the store until its dead letter is written.
    async def broker_away(records: list[OutboundRecord]) -> None:
        raise ConnectionError("no broker")

    import asyncio

    with pytest.raises(ConnectionError):
        asyncio.run(store.retention.run(broker_away))
    assert store.pipeline.parked_summary()[0] == 1 and store.audit("retention.parked_events") == []

    done = store.run(T0 + 31 * DAY)["parked_events"]
    assert (done.count, done.ids) == (1, [event_id])
    [letter] = store.sent
    headers = dict(letter.headers)
    assert (letter.topic, letter.key, letter.value) == ("x.hub.dlq", b"Z9999RT", parked.value)
    assert [h for h in letter.headers if not h[0].startswith("hub.")] == signature  # a replay is still signed
    assert headers["hub.error.stage"] == b"park" and headers["hub.error.class"] == b"Unclaimed"
    assert headers["hub.original.topic"] == b"x.agency.prison.events"
    assert headers["hub.first_failure_at"] == T0.isoformat().encode()
    assert event_id in headers["hub.error.message"].decode() and b"Hidden" not in headers["hub.error.message"]
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(ParkedEvent)) == 0
        assert session.scalar(select(func.count()).select_from(ParkedEventKey)) == 0
        assert session.get(ProcessedEvent, event_id) is None
    assert "Hidden Way" not in everything_readable(store.engine)
    [audited] = store.audit("retention.parked_events")
    assert event_id in audited.target and audited.count == 1

    # Replayed from the dead letters, it is applied again (parked once more), not taken for a duplicate.
    result = store.pipeline.process([InboundMessage(parked.topic, 0, 9, None, letter.key, letter.value)])
    assert result.dead_letters == [] and store.pipeline.parked_summary()[0] == 1


def test_copies_progress_audit_and_sign_ins_go_after_their_periods(store: Store) -> None:
    now = T0 + 800 * DAY
    with Session(store.engine) as session, session.begin():
        for offset, age in ((1, 15), (2, 13)):
            session.add(DeadLetterCopy(partition=0, offset=offset, key=None, value=b"sealed", headers=[],
                                       written_at=now - age * DAY))  # fmt: skip
            session.add(PurgedDeadLetter(partition=0, offset=offset, purged_at=now - age * DAY))
        for group, age in (("vlo-reader.YH", 31), ("vlo-reader.NE", 29)):
            session.add(ReaderProgress(reader_group=group, topic="x.vlo.YH", partition=0, notification_id="n",
                                       at=now - age * DAY))  # fmt: skip
        for age in (731, 729):
            session.add(
                OperatorAction(at=now - age * DAY, actor="alice", action="dlq.list", target="all", count=0)
            )
        session.add(FailedSignIn(username="typed-a-password", at=now - 2 * DAY))
        session.add(FailedSignIn(username="bob", at=now - timedelta(minutes=5)))
        session.add(ConsoleSignOut(nonce="old", until=now - timedelta(minutes=1)))
        session.add(ConsoleSignOut(nonce="live", until=now + timedelta(hours=1)))

    due = store.due(now)
    assert {step: due[step].count for step in due if due[step].count} == {
        "dead_letter_copies": 1,
        "purged_dead_letters": 1,
        "reader_progress": 1,
        "operator_actions": 1,
        "failed_sign_ins": 1,
        "console_sign_outs": 1,
    }
    assert due["dead_letter_copies"].ids == ["0:1"] and due["failed_sign_ins"].ids == []
    store.run(now)
    with Session(store.engine) as session:
        assert [c.offset for c in session.scalars(select(DeadLetterCopy))] == [2]
        assert [p.offset for p in session.scalars(select(PurgedDeadLetter))] == [2]
        assert [r.reader_group for r in session.scalars(select(ReaderProgress))] == ["vlo-reader.NE"]
        assert [s.nonce for s in session.scalars(select(ConsoleSignOut))] == ["live"]
        assert [f.username for f in session.scalars(select(FailedSignIn))] == ["bob"]
        kept = session.scalars(select(OperatorAction).where(OperatorAction.actor == "alice")).all()
        assert [a.at for a in kept] == [now - 729 * DAY]
    [failed] = store.audit("retention.failed_sign_ins")
    assert "typed-a-password" not in failed.target and failed.count == 1


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the steps above run on both databases
def test_hub_retention_run_lists_then_dead_letters_an_unclaimed_parked_event(
    hub: Hub, database_url: str
) -> None:
    keys_dir = Path(hub.env["HUB_KEYS_DIR"])
    settings = Settings(broker=hub.env["HUB_BROKER"], database_url=database_url, topic_prefix=hub.prefix)
    engine = make_engine(database_url, DataKeys(read_data_keys(keys_dir / "data"), keys_dir / "data"))
    try:
        store = Store(settings, engine, Clock(datetime.now(UTC) - 31 * DAY))
        store.publish("prison", released("Y8888RT", store.clock.now.date()), key=b"Y8888RT")
        with Session(engine) as session:
            [event_id] = session.scalars(select(ParkedEvent.event_id))

        dry = hub.run("retention", "run", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "parked_events: 1 due" in dry.stdout and event_id in dry.stdout
        assert "nothing was changed" in dry.stdout
        assert store.pipeline.parked_summary()[0] == 1

        done = hub.run("retention", "run")
        assert done.returncode == 0, done.stderr
        assert "parked_events: 1 done" in done.stdout and event_id in done.stdout
        assert store.pipeline.parked_summary()[0] == 0
        with Session(engine) as session:
            [audited] = session.scalars(
                select(OperatorAction).where(OperatorAction.action == "retention.parked_events")
            )
        assert audited.actor.startswith("retention, run by ") and event_id in audited.target
    finally:
        engine.dispose()

    listed = hub.run("dlq", "list", "--stage", "park")
    assert listed.returncode == 0, listed.stderr
    [letter] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (letter["stage"], letter["error_class"], letter["source"]) == ("park", "Unclaimed", "prison")
    assert event_id in letter["reason"]
