"""The case store a bench run measures against: a scratch database, bulk-loaded with cases as the hub would
have left them, and optionally kept (`--store-cache`) for later runs.

Loading a large store takes minutes. With `--store-cache DIR` a SQLite store is kept there once loaded and copied
on later runs with the same cases and seed, the same day, and the same loader (`cached_store`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hub.tools.traffic
from hub.tools.bench.options import BENCH_PREFIX, DatabaseKind
from hub.tools.bench.progress import say
from hub.tools.traffic import case_identifiers

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.store.encryption import DataKeys
    from routing.units import UnitDirectory

POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LOAD_CHUNK = 10_000  # cases per bulk-insert transaction
# A loaded case's history is this old; its annual update is due in about a year.
HISTORY_AGE = timedelta(days=30)
HISTORY_EVENT_IDS = 0xB0  # the top bits of loaded events' ids: apart from the ids events get when published
HISTORY_PAYLOAD = bytes(600)  # about the size of an encoded notification


def create_database(kind: DatabaseKind, directory: Path) -> tuple[str, str | None]:
    """(url, scratch PostgreSQL database name to drop afterwards)."""
    if kind is DatabaseKind.SQLITE:
        return f"sqlite:///{directory / 'hub.db'}", None
    from sqlalchemy import create_engine, text

    name = f"hub_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def applied_among(database_url: str, event_ids: Collection[str], since: datetime) -> int:
    """How many of these events the store records as applied since `since` (its `processed_events`; the loaded
    history is older). Notifications alone cannot tell that every event was applied: many cause none."""
    from sqlalchemy import select

    from hub.store.engine import make_engine
    from hub.store.models import ProcessedEvent

    wanted = set(event_ids)
    engine = make_engine(database_url)  # no data keys: the event ids are not encrypted
    try:
        with engine.connect() as connection:
            applied = connection.scalars(
                select(ProcessedEvent.event_id).where(ProcessedEvent.processed_at >= since)
            )
            return sum(1 for event_id in applied if event_id in wanted)
    finally:
        engine.dispose()


def case_rows(number: int, opening: Sequence[Any], units: UnitDirectory, now: datetime) -> dict[str, list]:
    """The rows the hub would hold for case `number` after its opening events and a first contact: offender,
    identifiers, case, victims and allocations, and their history (the events applied, the first-contact task
    published, the referral and first-contact timers stopped, an annual update running). A store of a million
    cases is then as large as one the hub built itself, so its per-event cost is the one production would see.
    Ids are derived from the number, so chunks can be inserted independently."""
    from routing import eligibility
    from routing.decisions import Action, Kind, Priority, notification_id
    from routing.timers import TimerKind

    ids = case_identifiers(number)
    rows: dict[str, list] = {
        "offenders": [],
        "identifiers": [],
        "cases": [],
        "victims": [],
        "allocations": [],
        "processed": [],
        "notifications": [],
        "timers": [],
    }
    offender_id = case_id = number + 1
    applied_at = now - HISTORY_AGE
    rows["offenders"].append({"id": offender_id})

    def timer(kind: TimerKind, victim_id: int | None, running: bool) -> None:
        rows["timers"].append(
            {
                "id": number * 32 + len(rows["timers"]) + 1,  # one for the case and two a victim, up to 10
                "kind": kind.value,
                "case_id": case_id,
                "victim_id": victim_id,
                "cause": "",
                "due_at": now + HISTORY_AGE * 12 if running else applied_at,
                "started_at": applied_at,
                "stopped_at": None if running else applied_at,
            }
        )

    identifiers = {
        "case_ref": ids.case_ref,
        "noms_number": ids.noms_number,
        "crn": ids.crn,
        "pnc": ids.pnc,
    }
    victims = 0
    for index, event in enumerate(opening):
        fields = event.fields
        event_id = str(uuid.UUID(int=(HISTORY_EVENT_IDS << 64) | (number << 4) | index))
        rows["processed"].append(
            {
                "event_id": event_id,
                "event_type": fields["event_type"],
                "source": event.source,
                "processed_at": applied_at,
            }
        )
        if fields["event_type"] == "SentenceImposed":
            timer(TimerKind.REFERRAL_OVERDUE, None, running=False)  # stopped by the referral below
            offences = tuple(
                eligibility.Offence(
                    o["code"], eligibility.Classification(o["classification"]), o["description"]
                )
                for o in fields["offences"]
            )
            term = fields.get("custodial_term_months")
            youth = bool(fields.get("youth", False))
            result = eligibility.assess(
                eligibility.Sentence(eligibility.Disposal(fields["disposal"]), term, offences, youth)
            )
            if cro := fields.get("cro") or (fields.get("offender") or {}).get("cro"):
                identifiers["cro"] = cro
            rows["cases"].append(
                {
                    "id": case_id,
                    "case_ref": ids.case_ref,
                    "offender_id": offender_id,
                    "court_code": fields["court_code"],
                    "sentence_date": date.fromisoformat(fields["sentence_date"]),
                    "youth": youth,
                    "offences": [dict(o) for o in fields["offences"]],
                    "eligibility_status": result.status.value,
                    "eligibility_rule": result.rule,
                    "eligibility_basis": result.basis,
                    "owning_unit_code": units.unit_for_court(fields["court_code"]).code,
                    "status": "open",
                    "needs_unit_decision": False,
                    "opened_at": now,
                }
            )
        elif fields["event_type"] == "DiscretionaryCaseOpened":
            case = rows["cases"][-1]
            opened = eligibility.open_discretionary(
                eligibility.Eligibility(
                    eligibility.EligibilityStatus(case["eligibility_status"]),
                    case["eligibility_rule"],
                    case["eligibility_basis"],
                    None,
                ),
                fields["unit_code"],
                fields["reason"],
            )
            case["eligibility_status"] = opened.status.value
            case["eligibility_rule"] = opened.rule
            case["eligibility_basis"] = opened.basis
            if units.unit_by_code(fields["unit_code"]) is not None:
                case["owning_unit_code"] = fields["unit_code"]
        elif fields["event_type"] == "VictimReferred":
            person = fields["victim"]
            postcode = person["address"]["postcode"]
            victim_id = number * 10 + victims + 1  # up to 10 victims a case keeps ids unique across chunks
            rows["victims"].append(
                {
                    "id": victim_id,
                    "case_id": case_id,
                    "person_ref": person["person_ref"],
                    "name": person["name"],
                    "relationship_to_offence": person["relationship"],
                    "postcode": postcode,
                    "unit_code": units.resolve_unit(postcode).code,
                    "language": person.get("language"),
                    "preferred_channel": person.get("preferred_channel"),
                    "accessibility_needs": person.get("accessibility_needs"),
                    "opted_out": False,
                    "declined": False,
                }
            )
            victims += 1
            # The first-contact task the referral raised, long since on the unit's queue; the contact that
            # followed stopped its timer and started the annual update.
            rows["notifications"].append(
                {
                    "notification_id": notification_id(
                        Kind.TASK, f"first_contact:{event_id}", ids.case_ref, person["person_ref"]
                    ),
                    "kind": Kind.TASK.value,
                    "case_id": case_id,
                    "unit_code": rows["victims"][-1]["unit_code"],
                    "event_type": "VictimReferred",
                    "action": Action.TASK.value,
                    "priority": Priority.NORMAL.value,
                    "topic": f"{BENCH_PREFIX}vlo.{rows['victims'][-1]['unit_code']}",
                    "key": ids.case_ref.encode(),
                    "payload": HISTORY_PAYLOAD,
                    "source_event_id": event_id,
                    "person_ref": person["person_ref"],
                    "created_at": applied_at,
                    "event_published_at": applied_at,
                    "published_at": applied_at,
                }
            )
            timer(TimerKind.FIRST_CONTACT, victim_id, running=False)
            timer(TimerKind.ANNUAL_UPDATE, victim_id, running=True)
        elif fields["event_type"] == "CaseAllocated":
            rows["allocations"].append(
                {
                    "id": number * 10 + len(rows["allocations"]) + 1,
                    "case_id": case_id,
                    "unit_code": fields["unit_code"],
                    "vlo_id": fields["vlo_id"],
                }
            )
    rows["identifiers"] = [
        {"id": number * 10 + i + 1, "offender_id": offender_id, "kind": kind, "value": value}
        for i, (kind, value) in enumerate(identifiers.items())
    ]
    return rows


def load_cases(engine: Engine, units: UnitDirectory, traffic: Any, count: int) -> float:
    """Bulk-insert `count` cases as their opening events would have left them; returns the seconds it took."""
    from sqlalchemy import Table, text

    from hub.store.models import (
        Base,
        Case,
        CaseAllocation,
        Notification,
        Offender,
        OffenderIdentifier,
        ProcessedEvent,
        Timer,
        Victim,
    )

    def table_of(model: type[Base]) -> Table:
        return Base.metadata.tables[model.__tablename__]  # the model's __table__, typed as a Table

    tables = {  # in an order the foreign keys allow
        "offenders": table_of(Offender),
        "identifiers": table_of(OffenderIdentifier),
        "cases": table_of(Case),
        "victims": table_of(Victim),
        "allocations": table_of(CaseAllocation),
        "processed": table_of(ProcessedEvent),
        "notifications": table_of(Notification),
        "timers": table_of(Timer),
    }
    started = time.monotonic()
    now = datetime.now(UTC)
    last_report = started
    for first in range(0, count, LOAD_CHUNK):
        chunk: dict[str, list] = {name: [] for name in tables}
        for number in range(first, min(count, first + LOAD_CHUNK)):
            for name, rows in case_rows(number, traffic.opening_events(number), units, now).items():
                chunk[name].extend(rows)
        with engine.begin() as connection:
            for name, table in tables.items():
                if chunk[name]:
                    connection.execute(table.insert(), chunk[name])
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            say(f"loaded {first + LOAD_CHUNK:,} of {count:,} cases")
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Explicit ids bypassed the sequences; new rows must not collide with loaded ones.
            for table in (table for table in tables.values() if "id" in table.c):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                    )
                )
        connection.execute(text("ANALYZE"))  # the planner sees a large store, as in production
    return time.monotonic() - started


def cached_store(cache: Path, cases: int, seed: int, today: date) -> Path:
    """Where a loaded SQLite store is kept for later runs. A loaded case's history is dated from the day it is
    loaded, and its rows are what this module and the traffic generator make, so the name holds the day and a
    digest of their sources: a store loaded by other code, or on another day, is not reused."""
    traffic = sorted(Path(hub.tools.traffic.__file__).parent.glob("*.py"))
    loader = hashlib.sha256(b"".join(path.read_bytes() for path in [Path(__file__), *traffic]))
    return cache / f"cases-{cases}-seed-{seed}-{today.isoformat()}-{loader.hexdigest()[:12]}.db"


def share_data_keys(keys_dir: Path, cache: Path | None) -> DataKeys:
    """The data keys of a bench run's keys directory. A kept store (cached_store) is encrypted at rest like any
    other, so its data key is kept beside it and given to every run that copies it."""
    from connectors.keys import KeysDirectory, write_data_key
    from hub.store.encryption import DataKeys

    keys = KeysDirectory(keys_dir)
    if cache is not None:
        kept = cache / "data-keys"
        if any(kept.glob("*.key")):
            shutil.copytree(kept, keys.data, dirs_exist_ok=True)
        else:
            if not keys.data_keys():
                write_data_key(keys.data)
            shutil.copytree(keys.data, kept, dirs_exist_ok=True)
    if not keys.data_keys():
        write_data_key(keys.data)
    return DataKeys(keys.data_keys(), keys.data)


def load_or_copy(engine: Engine, units: UnitDirectory, traffic: Any, count: int, kept: Path) -> float:
    """Fill a migrated, empty SQLite store from `kept` if it exists; else load it and keep a copy there. Returns
    the seconds it took. The engine is disposed of either way."""
    from sqlalchemy import text

    started = time.monotonic()
    database = Path(engine.url.database or "")
    if kept.exists():
        engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(kept, database)
        say(f"case store copied from {kept}")
    else:
        load_cases(engine, units, traffic, count)
        with engine.connect() as connection:  # everything in the database file itself, none in its WAL
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        engine.dispose()
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(".partial")
        shutil.copyfile(database, partial)
        partial.rename(kept)  # whole or not there: a run stopped while copying leaves no half store to reuse
        say(f"case store kept in {kept}")
    return time.monotonic() - started
