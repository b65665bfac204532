"""Data keys for tests that open a case store themselves: made on first use in a directory of the test's, as the
embedded hub makes its own (encryption at rest is never off, in tests either)."""

from __future__ import annotations

from pathlib import Path

from connectors.keys import read_data_keys, write_data_key
from hub.store.encryption import DataKeys


def data_keys_in(directory: Path) -> DataKeys:
    """The data keys in `directory`/data, one made if there is none."""
    where = directory / "data"
    if not read_data_keys(where):
        write_data_key(where)
    return DataKeys(read_data_keys(where), where)
