"""The case store on both databases: migrations build exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.store.models import Base
from hub.store.repository import make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    make_engine(database_url)  # a second start finds the store current and changes nothing
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
