"""Opening the case store: the engine for SQLite or PostgreSQL, migrated, with its data keys."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from connectors.keys import KeysDirectory, write_data_key
from hub.errors import DataKeysMissing
from hub.settings import Settings
from hub.store.encryption import DataKeys, attach
from hub.store.migrate import upgrade

SQLITE_CACHE_KIB = 64 * 1024  # per connection; pages are taken only as they are read
IdentifierKey = tuple[str, str]  # (kind, value), for example ("noms_number", "A1234BC")


def make_engine(
    url: str,
    data_keys: DataKeys | None = None,
    connect_args: Mapping[str, str] | None = None,
    *,
    migrate: bool = True,
) -> Engine:
    """An engine for SQLite or PostgreSQL, its tables migrated to the current version (unless not to `migrate`: a
    reader beside a process that has). Without `data_keys` it reads and writes no encrypted column
    (DataKeysMissing): a tool that only counts rows needs none."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # WAL lets the CLI read while the worker writes; foreign keys are off by default in SQLite.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # What is deleted or anonymised is overwritten in the file, not left in free pages (hub/store/erasure.py).
            cursor.execute("PRAGMA secure_delete=ON")
            # SQLite's default page cache is 2 MiB: with a million cases every lookup would read from the file.
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args=dict(connect_args or {}))
    if migrate:
        upgrade(engine)
    return attach(engine, data_keys)


def data_keys(settings: Settings) -> DataKeys:
    """The case store's data keys from the keys directory. The embedded default makes one on first use; a
    deployment's keys directory must hold one (`hub keys new --data`): nothing is ever stored in clear."""
    keys = KeysDirectory(settings.resolved_keys_dir)
    if settings.keys_dir is None and not keys.data_keys():
        write_data_key(keys.data)
    found = keys.data_keys()
    if not found:
        raise DataKeysMissing(
            f"no data key in {keys.data}: make one with `hub keys new --data` (the case store is encrypted at rest)"
        )
    return DataKeys(found, keys.data)


def open_store(settings: Settings) -> Engine:
    """The case store as the settings name it, with its data keys and TLS settings: what the hub's processes use."""
    return make_engine(settings.resolved_database_url, data_keys(settings), settings.database_connect_args)
