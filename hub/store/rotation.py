"""Data key rotation: re-encrypts under the newest data key every stored value still under an older one (or stored
before encryption at rest), in small batches, while the worker runs.

Each batch is read, re-encrypted in Python and written back with a compare-and-set (`WHERE value = what was read`),
so a value the worker rewrites meanwhile is left as the worker wrote it, already under the newest key. The
encrypted columns are found from the models (hub/store/models.py), so a new one is rotated without a change here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, TableClause, bindparam, column, select, table, update

from hub.store.encryption import DataKeys, EncryptedBytes, EncryptedText, key_id_of
from hub.store.models import Base

BATCH_ROWS = 500
# A pass rewrites what was under older keys; a further pass finds what raced with the worker. More than this many
# passes means values keep appearing under older keys: another process has older keys only.
MOST_PASSES = 5


@dataclass(frozen=True)
class EncryptedColumns:
    table: str
    primary_key: str
    columns: tuple[str, ...]


@dataclass
class RotationReport:
    newest_key: str
    re_encrypted: Counter[str] = field(default_factory=Counter)  # by "table.column"
    changed_meanwhile: int = 0  # values the worker rewrote between our read and our write
    passes: int = 0
    # What each key held before rotation, by key id ("clear" for values stored before encryption at rest).
    found_under: Counter[str] = field(default_factory=Counter)


def encrypted_columns() -> list[EncryptedColumns]:
    found = []
    for model_table in Base.metadata.sorted_tables:
        columns = tuple(
            c.name for c in model_table.columns if isinstance(c.type, (EncryptedBytes, EncryptedText))
        )
        if columns:
            (primary_key,) = (c.name for c in model_table.primary_key.columns)
            found.append(EncryptedColumns(model_table.name, primary_key, columns))
    return found


def _raw_table(spec: EncryptedColumns) -> TableClause:
    # Untyped columns: values go to and come from the driver as stored, not through the encrypting types.
    return table(spec.table, column(spec.primary_key), *(column(name) for name in spec.columns))


def _rotate_table(
    engine: Engine, keys: DataKeys, spec: EncryptedColumns, report: RotationReport, count_keys: bool
) -> int:
    raw = _raw_table(spec)
    primary_key = raw.c[spec.primary_key]
    last = None
    rewritten = 0
    while True:
        query = select(raw).order_by(primary_key).limit(BATCH_ROWS)
        if last is not None:
            query = query.where(primary_key > last)
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return rewritten
        last = rows[-1][0]
        changes: dict[str, list[dict[str, object]]] = {name: [] for name in spec.columns}
        for row in rows:
            for name in spec.columns:
                stored = getattr(row, name)
                if stored is None:
                    continue
                stored_bytes = stored.encode() if isinstance(stored, str) else bytes(stored)
                key_id = key_id_of(stored_bytes)
                if count_keys:
                    report.found_under[key_id or "clear"] += 1
                if key_id == keys.newest_id:
                    continue
                plaintext = keys.decrypt(stored_bytes, f"{spec.table}.{name}")
                changes[name].append(
                    {
                        "b_id": row[0],
                        "b_old": stored,
                        "b_new": keys.encrypt(plaintext, f"{spec.table}.{name}"),
                    }
                )
        with engine.begin() as connection:
            for name, values in changes.items():
                if not values:
                    continue
                statement = (
                    update(raw)
                    .where(primary_key == bindparam("b_id"), raw.c[name] == bindparam("b_old"))
                    .values({name: bindparam("b_new")})
                )
                written = connection.execute(statement, values).rowcount
                report.re_encrypted[f"{spec.table}.{name}"] += written
                report.changed_meanwhile += len(values) - written
                rewritten += len(values)


def rotate_data(
    engine: Engine, keys: DataKeys, say: Callable[[str], None] = lambda _: None
) -> RotationReport:
    """Every encrypted value under the newest data key; returns what was done."""
    report = RotationReport(newest_key=keys.newest_id)
    for attempt in range(MOST_PASSES):
        report.passes += 1
        rewritten = 0
        for spec in encrypted_columns():
            count = _rotate_table(engine, keys, spec, report, count_keys=attempt == 0)
            if count:
                say(f"{spec.table}: {count} value(s) re-encrypted")
            rewritten += count
        if rewritten == 0:
            return report
    raise RuntimeError(
        f"values under older data keys kept appearing after {MOST_PASSES} passes: is a process running without "
        f"data key {keys.newest_id}?"
    )
