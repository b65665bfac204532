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
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(alembic_config(connection), "head")


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
