"""Encryption at rest on both databases: what a victim is and what agencies sent is unreadable in the store without
the data keys, stays readable with them, and moves to a new key while the hub runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, column, select, table, text, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from connectors.keys import write_data_key
from hub.cli.main import app
from hub.errors import DataKeysMissing, UnreadableValue
from hub.store.encryption import DataKeys, key_id_of
from hub.store.engine import make_engine
from hub.store.migrate import alembic_config
from hub.store.models import Case, Notification, Offender, ParkedEvent, Victim
from hub.store.rotation import rotate_data
from tests.data_keys import data_keys_in

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
NAME = "Priya Confidential"
POSTCODE = "LS6 2AB"
NEEDS = "Hearing loop; call after 6pm"
PAYLOAD = b'{"name": "Priya Confidential", "phone": "07700 900123"}'


def _write_victim(engine: Engine, case_ref: str = "01EN0000126", person_ref: str = "P-1") -> None:
    with Session(engine) as session, session.begin():
        case = Case(
            case_ref=case_ref,
            offender=Offender(),
            opened_at=NOW,
            owning_unit_code="YH",
            eligibility_status="statutory",
            eligibility_rule="violent_12_months",
            eligibility_basis="test",
        )
        session.add(case)
        session.add(
            Victim(
                case=case,
                person_ref=person_ref,
                name=NAME,
                relationship_to_offence="victim",
                postcode=POSTCODE,
                unit_code="YH",
                language="cy",
                preferred_channel="phone",
                accessibility_needs=NEEDS,
            )
        )
        session.add(
            ParkedEvent(
                event_id="e-1",
                event_type="VictimContactDetailsChanged",
                source="vcs",
                topic="agency.vcs.events",
                payload=PAYLOAD,
                published_at=NOW,
                parked_at=NOW,
            )
        )
        session.add(
            Notification(
                notification_id="n-1",
                kind="event",
                case=case,
                unit_code="YH",
                event_type="VictimReferred",
                action="inform_victim",
                priority="normal",
                topic="vlo.YH",
                key=case_ref.encode(),
                payload=PAYLOAD,
                created_at=NOW,
            )
        )


RAW_VICTIMS = table(
    "victims", column("name"), column("postcode"), column("language"), column("accessibility_needs")
)


def _raw(engine: Engine, tables: tuple[str, ...] = ("parked_events", "notifications")) -> list[bytes | None]:
    """The victim's encrypted columns and the payloads of `tables`, as a database administrator sees them."""
    with engine.connect() as connection:
        values = list(connection.execute(select(RAW_VICTIMS)).one())
        for name in tables:
            values.append(connection.execute(text(f"SELECT payload FROM {name}")).scalar_one())
    return [None if v is None else v.encode() if isinstance(v, str) else bytes(v) for v in values]


def test_victims_and_payloads_are_unreadable_in_the_store_and_read_back_with_the_keys(
    database_url: str, tmp_path: Path
) -> None:
    keys = data_keys_in(tmp_path / "keys")
    engine = make_engine(database_url, keys)
    try:
        _write_victim(engine)
        stored = _raw(engine)
        for plaintext in (NAME, POSTCODE, NEEDS, "Priya", "07700"):
            assert all(plaintext.encode() not in value for value in stored), plaintext
        assert {key_id_of(value) for value in stored} == {keys.newest_id}
        if database_url.startswith("sqlite"):
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            assert NAME.encode() not in Path(database_url.removeprefix("sqlite:///")).read_bytes()

        with Session(engine) as session:
            victim = session.scalars(select(Victim)).one()
            assert (victim.name, victim.postcode, victim.language, victim.accessibility_needs) == (
                NAME,
                POSTCODE,
                "cy",
                NEEDS,
            )
            assert session.scalars(select(ParkedEvent.payload)).one() == PAYLOAD
            assert session.scalars(select(Notification.payload)).one() == PAYLOAD
            # References stay searchable: routing finds the victim by the unit's reference.
            assert session.scalars(select(Victim).where(Victim.person_ref == "P-1")).one() is victim
    finally:
        engine.dispose()


def test_a_value_moved_to_another_column_or_read_without_keys_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    try:
        _write_victim(engine)
        with engine.begin() as connection:  # someone with database access swaps the name into the postcode
            name = connection.execute(select(RAW_VICTIMS.c.name)).scalar_one()
            connection.execute(update(RAW_VICTIMS).values(postcode=name))
        with Session(engine) as session, pytest.raises(UnreadableValue, match="victims.postcode"):
            session.scalars(select(Victim.postcode)).one()
    finally:
        engine.dispose()

    without_keys = make_engine(database_url)
    try:
        with Session(without_keys) as session, pytest.raises(DataKeysMissing, match="victims.name"):
            session.scalars(select(Victim.name)).one()
        with (
            Session(without_keys) as session,
            session.begin(),
            pytest.raises(StatementError, match="data keys"),
        ):
            session.add(
                ParkedEvent(
                    event_id="e-2",
                    event_type="X",
                    source="vcs",
                    topic="t",
                    payload=b"clear",
                    published_at=NOW,
                    parked_at=NOW,
                )
            )
            session.flush()
    finally:
        without_keys.dispose()


def test_a_store_from_before_encryption_is_encrypted_by_rotate_data_and_moves_to_a_new_key(
    database_url: str, tmp_path: Path
) -> None:
    """The upgrade path, and a key rotation, through the command operators run (the embedded default's keys)."""
    # A store as it was before encryption at rest: migrated to 0010, a victim and payloads in clear.
    engine = _store_at_0010(database_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO offenders (id) VALUES (1)"))
        connection.execute(
            text(
                "INSERT INTO cases (id, case_ref, offender_id, youth, eligibility_status, eligibility_rule, "
                "eligibility_basis, owning_unit_code, status, needs_unit_decision, opened_at) VALUES "
                "(1, '01EN0000226', 1, false, 'statutory', 'r', 'b', 'YH', 'open', false, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO victims (case_id, person_ref, name, relationship_to_offence, postcode, unit_code, "
                "opted_out, declined, accessibility_needs) VALUES (1, 'P-1', :name, 'victim', :postcode, 'YH', "
                "false, false, :needs)"
            ),
            {"name": NAME, "postcode": POSTCODE, "needs": NEEDS},
        )
        # A row that refers to the victim: SQLite's migration copies the victims table, which must keep it valid.
        connection.execute(
            text(
                "INSERT INTO timers (kind, case_id, victim_id, cause, due_at, started_at) "
                "VALUES ('annual_update', 1, 1, '', :now, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO parked_events (event_id, event_type, source, topic, payload, published_at, parked_at) "
                "VALUES ('e-1', 'X', 'vcs', 't', :payload, :now, :now)"
            ),
            {"payload": PAYLOAD, "now": NOW.replace(tzinfo=None)},
        )
    engine.dispose()

    data_dir = tmp_path / "hub"
    env = {"HUB_DATA_DIR": str(data_dir), "HUB_DATABASE_URL": database_url}
    runner = CliRunner()
    first = runner.invoke(app, ["keys", "rotate-data"], env=env)
    assert first.exit_code == 0, first.output
    assert "values found: 4 under clear" in first.output  # name, postcode, needs and the parked payload
    assert NAME not in first.output
    keys = data_keys_in(data_dir / "keys")
    engine = make_engine(database_url, keys)
    try:
        stored = [value for value in _raw(engine, ("parked_events",)) if value is not None]
        assert stored and {key_id_of(value) for value in stored} == {keys.newest_id}
        assert all(NAME.encode() not in value for value in stored)
    finally:
        engine.dispose()

    old_key = keys.newest_id
    write_data_key(data_dir / "keys" / "data")
    second = runner.invoke(app, ["keys", "rotate-data"], env=env)
    assert second.exit_code == 0, second.output
    assert f"no value needs {old_key} any more" in second.output
    for path in (data_dir / "keys" / "data").glob(f"{old_key}.key"):
        path.unlink()  # the old key is gone: everything must read under the new one
    keys = data_keys_in(data_dir / "keys")
    engine = make_engine(database_url, keys)
    try:
        assert {key_id_of(value) for value in _raw(engine, ("parked_events",)) if value is not None} == {
            keys.newest_id
        }
        with Session(engine) as session:
            victim = session.scalars(select(Victim)).one()
            assert (victim.name, victim.postcode, victim.accessibility_needs) == (NAME, POSTCODE, NEEDS)
            assert session.scalars(select(ParkedEvent.payload)).one() == PAYLOAD
    finally:
        engine.dispose()


def test_rotation_leaves_a_value_the_worker_rewrote_meanwhile_as_the_worker_wrote_it(
    database_url: str, tmp_path: Path
) -> None:
    old = data_keys_in(tmp_path / "keys")
    engine = make_engine(database_url, old)
    try:
        _write_victim(engine)
    finally:
        engine.dispose()
    write_data_key(tmp_path / "keys" / "data")
    keys = data_keys_in(tmp_path / "keys")
    worker = make_engine(database_url, keys)

    class WorkerWritesDuringTheBatch(DataKeys):
        """The worker changes the victim's name between rotation's read of a batch and its write."""

        raced = False

        def decrypt(self, stored: bytes, column: str) -> bytes:
            if column == "victims.name" and not self.raced:
                self.raced = True
                with Session(worker) as session, session.begin():
                    session.scalars(select(Victim)).one().name = "Name As The Worker Wrote It"
            return super().decrypt(stored, column)

    rotating = WorkerWritesDuringTheBatch({key: value for key, value in _key_bytes(tmp_path).items()})
    engine = make_engine(database_url, rotating)
    try:
        report = rotate_data(engine, rotating)
        assert report.changed_meanwhile == 1
        with Session(worker) as session:
            assert session.scalars(select(Victim.name)).one() == "Name As The Worker Wrote It"
        assert {key_id_of(value) for value in _raw(engine)} == {keys.newest_id}
    finally:
        engine.dispose()
        worker.dispose()


def _key_bytes(tmp_path: Path) -> dict[str, bytes]:
    from connectors.keys import read_data_keys

    return read_data_keys(tmp_path / "keys" / "data")


def _store_at_0010(database_url: str) -> Engine:
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0010")
    return engine


def test_a_database_connection_that_must_use_tls_is_refused_without_it(tmp_path: Path) -> None:
    """This machine's PostgreSQL has no TLS: a hub told to require it must not fall back to plaintext."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from hub.settings import Settings
    from hub.store.engine import open_store
    from tests.integration.conftest import POSTGRES_ADMIN_URL

    plain = create_engine(POSTGRES_ADMIN_URL)
    try:
        with plain.connect() as connection:  # reachable without TLS, as libpq's default allows
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable: {type(error).__name__}")
    finally:
        plain.dispose()
    settings = Settings(database_url=POSTGRES_ADMIN_URL, database_tls="require", data_dir=tmp_path)
    assert settings.database_connect_args == {"sslmode": "require"}
    with pytest.raises(OperationalError, match="SSL"):
        open_store(settings)
