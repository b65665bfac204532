"""Erasure on request (README, Erasure): an erased victim leaves no personal data in the store, the unit is told by
one record_only notification, a second request changes nothing, and every request is in the audit table.

The worker's pipeline on a real database (SQLite and PostgreSQL), no broker: a case is built by applying agency
events, then the victim is erased with `hub.store.erasure.erase_victim` and through `hub victims erase`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory, write_key_pair
from connectors.publisher import event_from_json
from connectors.sealing import Opener
from hub.cli.main import app
from hub.errors import VictimNotFound
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.store.erasure import ERASURE_EVENT_TYPE, erase_victim
from hub.store.models import (
    DeadLetterCopy,
    Notification,
    OperatorAction,
    ParkedEvent,
    ParkedEventKey,
    PurgedDeadLetter,
    Timer,
    Victim,
)
from schemas import event_schemas

CODEC = hub_codec()
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
ERASED_AT = T0 + timedelta(minutes=30)
CASE, OTHER_CASE, NOMS = "01ER0000126", "01ER0000226", "E1234RA"
PERSON, SIBLING = "WC-ER-1", "WC-ER-2"
NAME, POSTCODE, PHONE, EMAIL = "Orla Quennell", "LS6 2AB", "07700 900456", "orla.quennell@example.org"
NEEDS = "Large-print letters; calls after 4pm only"
# Nothing of these may be left anywhere in the store once the victim is erased.
PERSONAL = (NAME, "Quennell", POSTCODE, PHONE, EMAIL, NEEDS)
SIBLING_NAME = "Tomasz Quill"

SENTENCE = {
    "event_type": "SentenceImposed",
    "case_ref": CASE,
    "noms_number": NOMS,
    "court_code": "Leeds Crown Court",
    "sentence_date": (T0 - timedelta(days=30)).date().isoformat(),
    "offences": [{"code": "OF61016", "classification": "violent"}],
    "disposal": "custody",
    "custodial_term_months": 36,
}
ALLOCATED = {"event_type": "CaseAllocated", "case_ref": CASE, "unit_code": "YH", "vlo_id": "vlo-yh-9"}


def referral(person_ref: str, name: str, postcode: str = POSTCODE, **victim: object) -> dict:
    return {
        "event_type": "VictimReferred",
        "case_ref": CASE,
        "referral_date": T0.date().isoformat(),
        "victim": {"person_ref": person_ref, "name": name, "address": {"postcode": postcode}, **victim},
    }


REFERRAL = referral(
    PERSON,
    NAME,
    phone=PHONE,
    email=EMAIL,
    language="cy",
    accessibility_needs=NEEDS,
    preferred_channel="phone",
)
PREFERENCES = {
    "event_type": "VictimPreferencesUpdated",
    "case_ref": CASE,
    "person_ref": PERSON,
    "categories": ["custody_progress", "release"],
    "channel": "email",
    "language": "cy",
    "accessibility_needs": NEEDS,
}
TEMPORARY_RELEASE = {
    "event_type": "TemporaryReleaseDecided",
    "noms_number": NOMS,
    "decision": "granted",
    "rotl_type": "resettlement_day_release",
    "decision_date": T0.date().isoformat(),
    "first_release_date": (T0 + timedelta(days=14)).date().isoformat(),
}
ESCAPED = {
    "event_type": "PrisonerEscaped",
    "noms_number": NOMS,
    "escaped_at": T0.isoformat(),
    "escape_type": "escape_from_establishment",
}
RELEASED = {
    "event_type": "PrisonerReleased",
    "noms_number": NOMS,
    "release_type": "automatic",
    "release_date": T0.date().isoformat(),
}


def encoded(source: str, data: dict, published_at: datetime) -> bytes:
    event = event_from_json({**data, "published_at": published_at.isoformat()}, source, published_at)
    return CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())


def apply(
    pipeline: Pipeline, events: list[tuple[str, dict]], at: datetime, *, on_queue: bool = True
) -> list[Notification]:
    """Apply events as one batch, published a second apart from `at`. `on_queue`: the worker then puts what they
    made on the unit queues (False: they wait in the outbox)."""
    messages = [
        InboundMessage(
            f"x.agency.{source}.events", 0, n, None, None, encoded(source, data, at + timedelta(seconds=n))
        )
        for n, (source, data) in enumerate(events)
    ]
    result = pipeline.process(messages)
    assert result.dead_letters == [] and result.transient == []
    if on_queue:
        pipeline.published([n.notification_id for n in result.notifications], at)
        pipeline.confirm_published()
    return result.notifications


def at(pipeline: Pipeline, instant: datetime) -> None:
    """The pipeline's clock stands still at `instant`: notifications made are created then."""
    pipeline.clock = lambda: instant


def open_case(pipeline: Pipeline) -> None:
    """A case with two victims, where the erased one has notifications on their queue, one urgent and still
    unanswered, and a release still in the outbox."""
    at(pipeline, T0 + timedelta(minutes=5))
    apply(
        pipeline,
        [
            ("court", SENTENCE),
            ("vcs", ALLOCATED),
            ("witness-care", REFERRAL),
            ("vcs", PREFERENCES),
            ("witness-care", referral(SIBLING, SIBLING_NAME, "LS1 4AP")),
            ("prison", TEMPORARY_RELEASE),
            ("prison", ESCAPED),
        ],
        T0,
    )
    apply(pipeline, [("prison", RELEASED)], T0 + timedelta(minutes=1), on_queue=False)


def operations_keys(directory: Path) -> KeysDirectory:
    keys = KeysDirectory(directory)
    keys.create_missing([], [])  # the operations team's and the hub's own key pairs
    return keys


def keep_dead_letter(
    engine: Engine, offset: int, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            DeadLetterCopy(
                partition=0,
                offset=offset,
                key=None,
                value=value,
                headers=[[name, base64.b64encode(v).decode()] for name, v in headers],
                written_at=T0,
            )
        )


def park(engine: Engine, case_ref: str, event_id: str) -> None:
    """An event about the person waiting in the park (as one that raced the referral would)."""
    contacted = {
        "event_type": "VictimContacted",
        "event_id": event_id,
        "case_ref": case_ref,
        "person_ref": PERSON,
        "contacted_at": T0.isoformat(),
        "channel": "phone",
    }
    with Session(engine) as session, session.begin():
        parked = ParkedEvent(
            event_id=event_id,
            event_type="VictimContacted",
            source="vcs",
            topic="x.agency.vcs.events",
            payload=encoded("vcs", contacted, T0),
            published_at=T0,
            parked_at=T0,
        )
        parked.keys = [ParkedEventKey(kind="person_ref", value=PERSON)]
        session.add(parked)


def stored_text(engine: Engine, opener: Opener) -> str:
    """Everything the store holds that could carry a victim's data, decrypted and opened, as one text to search."""
    found: list[str] = []
    with Session(engine) as session:
        for victim in session.scalars(select(Victim)):
            found += [
                str(getattr(victim, f))
                for f in ("name", "postcode", "language", "preferred_channel", "accessibility_needs")
            ]
        for payload in session.scalars(select(Notification.payload).where(Notification.payload.is_not(None))):
            found.append(json.dumps(CODEC.decode(payload).record, default=str))
        for payload in session.scalars(select(ParkedEvent.payload)):
            found.append(payload.decode("utf-8", "replace"))
        for value in session.scalars(select(DeadLetterCopy.value)):
            found.append(opener.open(value).decode("utf-8", "replace"))
        for target in session.scalars(select(OperatorAction.target)):
            found.append(target)
    return "\n".join(found)


def raw_values(engine: Engine) -> list[bytes]:
    """The erased victim's encrypted values as the database stores them (ciphertext)."""
    with engine.connect() as connection:
        rows = [
            *connection.execute(
                text(
                    "SELECT name, postcode, language, preferred_channel, accessibility_needs FROM victims "
                    "WHERE person_ref = :p"
                ),
                {"p": PERSON},
            ).one(),
            *connection.execute(
                text("SELECT payload FROM notifications WHERE person_ref = :p"), {"p": PERSON}
            ).scalars(),
            *connection.execute(text("SELECT payload FROM parked_events")).scalars(),
        ]
    return [bytes(value) for value in rows if value is not None]


def test_an_erased_victim_leaves_no_personal_data_and_the_unit_is_told_once(
    pipeline: Pipeline, database_url: str, tmp_path: Path
) -> None:
    engine = pipeline.engine
    open_case(pipeline)
    park(engine, CASE, str(uuid.uuid4()))
    park(engine, OTHER_CASE, str(uuid.uuid4()))  # the same person on another case: not this erasure's
    keys = operations_keys(tmp_path / "ops")
    opener = keys.opener(keys.operations)
    sealer = keys.sealer(keys.operations)
    assert sealer is not None
    with Session(engine) as session:
        told_of_leave = session.scalars(
            select(Notification.notification_id).where(
                Notification.person_ref == PERSON, Notification.event_type == "TemporaryReleaseDecided"
            )
        ).one()
    # Dead letters: an undelivered notification of theirs, their referral, and the other victim's referral.
    keep_dead_letter(
        engine, 1, sealer.seal(b"sealed for the unit"), [("notification_id", told_of_leave.encode())]
    )
    keep_dead_letter(engine, 2, sealer.seal(encoded("witness-care", REFERRAL, T0)))
    keep_dead_letter(
        engine, 3, sealer.seal(encoded("witness-care", referral(SIBLING, SIBLING_NAME, "LS1 4AP"), T0))
    )
    assert NAME in stored_text(engine, opener)
    before = raw_values(engine)
    assert len(before) >= 8

    done = erase_victim(
        engine, CASE, PERSON, "Victim asked by letter", "alice", ERASED_AT, settings=pipeline.settings,
        codec=CODEC, dead_letter_opener=opener,
    )  # fmt: skip

    assert not done.already_erased and done.unit_code == "YH"
    # Referral task, temporary release, escape, release: every one of theirs lost its body; the release was still
    # in the outbox and is withdrawn.
    assert (done.notifications_cleared, done.notifications_withdrawn) == (4, 1)
    assert done.withdrawn_events and done.withdrawn_events[0].startswith("PrisonerReleased ")
    assert (done.parked_deleted, done.dead_letters_purged) == (1, 2)
    everything = stored_text(engine, opener)
    for personal in PERSONAL:
        assert personal not in everything, personal
    assert SIBLING_NAME in everything  # the other victim is untouched

    with engine.connect() as connection:
        victim = connection.execute(
            text(
                "SELECT name, postcode, language, preferred_channel, accessibility_needs, anonymised_reason, "
                "unit_code, relationship_to_offence FROM victims WHERE person_ref = :p"
            ),
            {"p": PERSON},
        ).one()
        assert tuple(victim) == (None, None, None, None, None, "erasure", "YH", "victim")
        with_body = connection.execute(
            text(
                "SELECT event_type, action FROM notifications WHERE person_ref = :p AND payload IS NOT NULL"
            ),
            {"p": PERSON},
        ).all()
        assert [tuple(row) for row in with_body] == [(ERASURE_EVENT_TYPE, "record_only")]
    with Session(engine) as session:
        kept = session.scalars(select(Victim).where(Victim.person_ref == PERSON)).one()
        assert kept.categories == ["custody_progress", "release"] and kept.anonymised_at == ERASED_AT
        running = session.scalars(
            select(Timer.kind).where(
                Timer.victim_id == kept.id, Timer.stopped_at.is_(None), Timer.fired_at.is_(None)
            )
        ).all()
        assert running == ["urgent_unacknowledged"]  # the unit still has to answer the escape
        assert session.scalars(select(ParkedEvent.event_type)).all() == [
            "VictimContacted"
        ]  # the other case's
        assert {(p.partition, p.offset) for p in session.scalars(select(PurgedDeadLetter))} == {
            (0, 1),
            (0, 2),
        }
        [audit] = session.scalars(
            select(OperatorAction).where(OperatorAction.action == "victims.erase")
        ).all()
        assert (audit.actor, audit.target, audit.count) == (
            "alice",
            f"case {CASE} person {PERSON}: Victim asked by letter",
            done.rows_changed,
        )

    # The outbox: of theirs, only the notification that tells the unit; the other victim's release still goes.
    at(pipeline, ERASED_AT + timedelta(minutes=1))
    outbox = pipeline.pending_outbox()
    assert sorted((n.person_ref, n.event_type) for n in outbox) == [
        (PERSON, ERASURE_EVENT_TYPE),
        (SIBLING, "PrisonerReleased"),
    ]
    told = CODEC.decode(next(n for n in outbox if n.person_ref == PERSON).payload).record
    assert (told["unit_code"], told["vlo_id"], told["action"], told["case_ref"]) == (
        "YH",
        "vlo-yh-9",
        "record_only",
        CASE,
    )
    assert (told["victim_name"], told["preferred_channel"], told["language"]) == (None, None, None)
    assert told["facts"]["reason"] == "Victim asked by letter"

    if database_url.startswith("sqlite"):
        # Not even the ciphertexts are left in the database file or its write-ahead log.
        path = Path(database_url.removeprefix("sqlite:///"))
        stored = path.read_bytes() + (wal.read_bytes() if (wal := Path(f"{path}-wal")).exists() else b"")
        assert NAME.encode() not in stored
        left = [value for value in before if value in stored]
        assert len(left) == 1  # the parked event of the other case, which stays

    again = erase_victim(
        engine, CASE, PERSON, "Asked again", "bob", ERASED_AT + timedelta(hours=1), settings=pipeline.settings
    )
    assert again.already_erased and again.erased_at == ERASED_AT and again.rows_changed == 0
    with Session(engine) as session:
        assert (
            len(
                session.scalars(
                    select(Notification).where(Notification.event_type == ERASURE_EVENT_TYPE)
                ).all()
            )
            == 1
        )
        audits = session.scalars(
            select(OperatorAction).where(OperatorAction.action == "victims.erase").order_by(OperatorAction.id)
        ).all()
        assert [(a.actor, a.count) for a in audits] == [("alice", done.rows_changed), ("bob", 0)]


def test_after_erasure_only_a_new_referral_brings_the_data_back(pipeline: Pipeline) -> None:
    engine = pipeline.engine
    open_case(pipeline)
    erase_victim(engine, CASE, PERSON, "Victim asked", "alice", ERASED_AT, settings=pipeline.settings)

    # The old referral again (a replay under a new id), preferences and an address change: the data stays erased,
    # and a notification about the erased victim still builds, with no name.
    later = ERASED_AT + timedelta(minutes=5)
    at(pipeline, later + timedelta(minutes=1))
    made = apply(
        pipeline,
        [
            ("vcs", PREFERENCES),
            (
                "vcs",
                {
                    "event_type": "VictimAddressChanged",
                    "case_ref": CASE,
                    "person_ref": PERSON,
                    "postcode": "NE1 4ST",
                },
            ),
            ("prison", {**TEMPORARY_RELEASE, "decision_date": later.date().isoformat()}),
        ],
        later,
    )
    replayed = encoded("witness-care", REFERRAL, T0 + timedelta(minutes=2))
    assert (
        pipeline.process(
            [InboundMessage("x.agency.witness-care.events", 0, 9, None, None, replayed)]
        ).dead_letters
        == []
    )
    with Session(engine) as session:
        victim = session.scalars(select(Victim).where(Victim.person_ref == PERSON)).one()
        assert (victim.name, victim.postcode, victim.preferred_channel, victim.accessibility_needs) == (
            None,
        ) * 4
        assert (
            victim.anonymised_reason == "erasure" and victim.unit_code == "NE"
        )  # the unit still follows a move
    [leave] = [n for n in made if n.person_ref == PERSON and n.event_type == "TemporaryReleaseDecided"]
    record = CODEC.decode(leave.payload).record
    assert record["victim_name"] is None and record["action"] == "inform_victim"

    # A referral published after the erasure: the victim rejoins, and the hub keeps their data again.
    apply(pipeline, [("witness-care", referral(PERSON, NAME))], ERASED_AT + timedelta(minutes=10))
    with Session(engine) as session:
        victim = session.scalars(select(Victim).where(Victim.person_ref == PERSON)).one()
        assert (victim.name, victim.postcode, victim.anonymised_at, victim.anonymised_reason) == (
            NAME,
            POSTCODE,
            None,
            None,
        )
    second = erase_victim(
        engine,
        CASE,
        PERSON,
        "Asked again",
        "alice",
        ERASED_AT + timedelta(hours=1),
        settings=pipeline.settings,
    )
    assert not second.already_erased and second.notification_id is not None


def test_the_command_is_for_admins_prints_no_name_and_audits_every_request(
    pipeline: Pipeline, database_url: str, tmp_path: Path
) -> None:
    engine = pipeline.engine
    open_case(pipeline)
    keys_dir = tmp_path / "keys"  # the pipeline's data key is there; no operations key yet
    env = {"HUB_KEYS_DIR": str(keys_dir), "HUB_DATABASE_URL": database_url, "HUB_DATA_DIR": str(tmp_path / "hub"),
           "HUB_OPERATOR": "carol"}  # fmt: skip
    erase = [
        "victims",
        "erase",
        "--case-ref",
        CASE,
        "--person-ref",
        PERSON,
        "--reason",
        "Victim asked",
        "--yes",
    ]
    runner = CliRunner()

    refused = runner.invoke(app, erase, env=env)
    assert refused.exit_code == 2 and "operations private key" in refused.output
    with Session(engine) as session:
        assert session.scalars(select(Victim.name).where(Victim.person_ref == PERSON)).one() == NAME

    write_key_pair(KeysDirectory(keys_dir).operations, "sealing")
    unknown = runner.invoke(app, [*erase[:5], "WC-NOBODY", *erase[6:]], env=env)
    assert unknown.exit_code == 1 and f"no person WC-NOBODY on case {CASE}" in unknown.output
    first = runner.invoke(app, erase, env=env)
    assert first.exit_code == 0, first.output
    assert (
        f"erased person {PERSON} on case {CASE}" in first.output
        and "1 not yet sent withdrawn" in first.output
    )
    second = runner.invoke(app, erase, env=env)
    assert second.exit_code == 0 and "already erased" in second.output
    for result in (refused, unknown, first, second):
        assert all(personal not in result.output for personal in PERSONAL)

    with Session(engine) as session:
        assert session.scalars(select(Victim.name).where(Victim.person_ref == PERSON)).one() is None
        audits = session.scalars(
            select(OperatorAction).where(OperatorAction.action == "victims.erase").order_by(OperatorAction.id)
        ).all()
    assert [(a.target, a.count > 0) for a in audits] == [
        (f"case {CASE} person {PERSON}: Victim asked; refused: not an admin", False),
        (f"case {CASE} person WC-NOBODY: Victim asked; not found", False),
        (f"case {CASE} person {PERSON}: Victim asked", True),
        (f"case {CASE} person {PERSON}: Victim asked", False),
    ]
    assert all("carol" in a.actor for a in audits)
    assert "with key" in audits[-1].actor and "with key" not in audits[0].actor


def test_an_unknown_case_is_an_error(pipeline: Pipeline) -> None:
    with pytest.raises(VictimNotFound, match="no case 01ER0009926"):
        erase_victim(
            pipeline.engine, "01ER0009926", PERSON, "Asked", "alice", ERASED_AT, settings=pipeline.settings
        )
