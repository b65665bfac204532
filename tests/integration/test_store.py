"""The case store on both databases: migrations build exactly the tables the models describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store import outbox, records
from hub.store.casefile import CaseFile
from hub.store.engine import make_engine
from hub.store.load import StoreLoader
from hub.store.models import Base, Case, Offender, Timer, Victim
from hub.store.write import write
from tests.data_keys import data_keys_in


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    make_engine(database_url)  # a second start finds the store current and changes nothing
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_parked_summary_counts_and_dates_the_oldest(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    first = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    try:
        with engine.begin() as connection:
            store = CaseFile(StoreLoader(connection))
            assert outbox.parked_summary(connection) == (0, None)
            for event_id, parked_at in (("e-later", first + timedelta(hours=5)), ("e-first", first)):
                parked = records.ParkedEvent(
                    event_id=event_id,
                    event_type="PrisonerReleased",
                    source="prison",
                    topic="agency.prison.events",
                    payload=b"",
                    key=None,
                    headers=None,
                    published_at=parked_at,
                    parked_at=parked_at,
                    keys=[records.ParkedKey("noms_number", "A1234BC")],
                )
                store.park(parked)
            write(connection, store)
        with engine.connect() as connection:
            # What the parked gauges show: the number waiting, and since when the oldest has waited.
            assert outbox.parked_summary(connection) == (2, first)
    finally:
        engine.dispose()


def test_a_finished_timer_is_never_started_again_and_a_running_one_moves(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    started = datetime(2026, 1, 5, 9, tzinfo=UTC)
    try:
        with Session(engine) as session, session.begin():
            case = Case(
                case_ref="T-1",
                offender=Offender(),
                opened_at=started,
                owning_unit_code="YH",
                eligibility_status="statutory",
                eligibility_rule="r",
                eligibility_basis="b",
            )
            victim = Victim(
                case=case,
                person_ref="P-1",
                name="n",
                relationship_to_offence="victim",
                postcode="LS1 1AA",
                unit_code="YH",
            )
            session.add_all([case, victim])
            session.add_all(
                [
                    _timer(case, victim, "first_contact", started, stopped_at=started + timedelta(days=3)),
                    _timer(case, victim, "annual_update", started + timedelta(days=365)),
                ]
            )
        with engine.begin() as connection:
            store = CaseFile(StoreLoader(connection))
            read = store.case_by_ref("T-1")
            assert read is not None
            read_victim = read.victims[0]
            # A first contact was offered once: the event that would offer it again finds it, stopped or not.
            assert store.has_timer(read, read_victim, "first_contact")
            assert not store.has_timer(read, None, "first_contact")
            for kind, days in (("first_contact", 30), ("annual_update", 400)):
                due = started + timedelta(days=days)
                store.start_timer(records.Timer(kind, read, read_victim, due_at=due, started_at=due))
            write(connection, store)
        with Session(engine) as session:
            rows = {t.kind: t for t in session.scalars(select(Timer))}
        assert len(rows) == 2  # no second first-contact timer (and no unique-key clash)
        assert rows["first_contact"].stopped_at is not None
        assert rows["annual_update"].due_at == started + timedelta(days=400)
    finally:
        engine.dispose()


def _timer(
    case: Case, victim: Victim, kind: str, due_at: datetime, stopped_at: datetime | None = None
) -> Timer:
    return Timer(
        kind=kind, case=case, victim=victim, cause="", due_at=due_at, started_at=due_at, stopped_at=stopped_at
    )
