"""Brings a case store's tables to the current version with Alembic (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: workers starting together take turns migrating a PostgreSQL database.
_MIGRATION_LOCK = 7_240_331


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        _upgrade_sqlite(engine)
        return
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(alembic_config(connection), "head")


def _upgrade_sqlite(engine: Engine) -> None:
    """SQLite alters a table by copying it and dropping the original, which foreign keys would refuse while rows
    refer to it: they are off during the migration (SQLite only allows that outside a transaction), checked after
    it, and on again."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            with connection.begin():
                command.upgrade(alembic_config(connection), "head")
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left {len(broken)} rows referring to no row")
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def new_revision(engine: Engine, message: str) -> None:
    """For developers: write a migration for the model changes (python -m hub.store.migrate "message")."""
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)


if __name__ == "__main__":
    import sys
    import tempfile

    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as scratch:
        scratch_engine = create_engine(f"sqlite:///{scratch}/scratch.db")
        upgrade(scratch_engine)  # the current version, so autogenerate sees only the new changes
        new_revision(scratch_engine, sys.argv[1] if len(sys.argv) > 1 else "change")
