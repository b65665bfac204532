"""The pipeline applies a chunk as load, decide, write: the statements it sends do not grow with the chunk."""

from __future__ import annotations

import gc
import random
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.signatures import signers_for
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.pipeline.handlers import needs_of
from hub.reference import load_units
from hub.settings import AGENCY_SOURCES, Settings
from hub.store import load, models
from hub.store.casefile import CaseFile
from hub.store.engine import make_engine
from hub.store.load import StoreLoader
from hub.tools.bench.events import prepare, realistic_mix
from hub.tools.bench.options import BENCH_PREFIX
from hub.tools.bench.store import load_cases
from hub.tools.traffic import Traffic
from tests.data_keys import data_keys_in

CASES = 60


def _loaded(database_url: str, tmp_path: Path) -> tuple[Pipeline, list[InboundMessage]]:
    """A pipeline on a store of CASES realistic cases, and realistic events about them."""
    settings = Settings(topic_prefix=BENCH_PREFIX, database_url=database_url, broker="")
    units = load_units(settings)
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    traffic = Traffic(seed=5, today=datetime.now(UTC).date(), first_case=0)
    load_cases(engine, units, traffic, CASES)
    keys = KeysDirectory(tmp_path / "agency-keys")
    keys.create_missing(list(AGENCY_SOURCES), [])
    prepared = prepare(
        realistic_mix(traffic, CASES, 220, random.Random(5)), signers_for(keys, list(AGENCY_SOURCES))
    )
    messages = [
        InboundMessage(BENCH_PREFIX + e.topic, 0, offset, None, e.key, e.value)
        for offset, e in enumerate(prepared)
    ]
    return Pipeline(settings, engine, hub_codec(), units), messages


def test_a_chunk_takes_the_same_few_statements_whatever_its_size(database_url: str, tmp_path: Path) -> None:
    pipeline, messages = _loaded(database_url, tmp_path)
    engine = pipeline.engine
    statements: list[str] = []

    def count(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        sent: dict[int, int] = {}
        applied = 0
        for size, chunk in ((10, messages[:10]), (100, messages[10:110]), (100, messages[110:210])):
            statements.clear()
            result = pipeline.process(chunk)
            assert result.dead_letters == [] and result.transient == [] and result.deferred == []
            applied += len(chunk)
            sent[size] = max(sent.get(size, 0), len(statements))
            pipeline.published([n.notification_id for n in result.notifications], datetime.now(UTC))
    finally:
        event.remove(engine, "before_cursor_execute", count)
        engine.dispose()
    # One look-up step reads everything the chunk asks about; one write step writes all it changed. A round
    # trip per event would send over a hundred statements for a chunk of a hundred.
    assert sent[100] <= 40, sent
    assert sent[100] <= sent[10] + 10, sent
    assert applied == 210


def test_a_chunks_records_are_freed_without_the_cycle_collector(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records left in cycles wait for the cycle collector, whose full collections paused the worker for up to a
    second in a long drain, urgent work included: once a chunk is written and its result dropped, every record
    it read or made is gone by reference counting alone."""
    pipeline, messages = _loaded(database_url, tmp_path)
    held: list[weakref.ref[object]] = []
    unlink = CaseFile.unlink

    def noting(casefile: CaseFile) -> None:
        records: list[object] = [*casefile.offenders.values(), *casefile.changes.offenders]
        records += [case for offender in records for case in offender.cases]  # type: ignore[attr-defined]
        records += [victim for case in casefile.cases_by_id.values() for victim in case.victims]
        records += [allocation for case in casefile.cases_by_id.values() for allocation in case.allocations]
        records += [timer for timers in casefile.timers.values() for timer in timers.running]
        records += list(casefile.notifications.values())
        held.extend(weakref.ref(record) for record in records)
        unlink(casefile)

    monkeypatch.setattr(CaseFile, "unlink", noting)
    pipeline.process(messages[:20])  # the store's first use (migrations, caches) out of the way
    gc.collect()
    gc.disable()
    try:
        held.clear()
        result = pipeline.process(messages[20:120])
        assert result.notifications and len(held) > 100
        del result
        alive = [ref() for ref in held if ref() is not None]
    finally:
        gc.enable()
        pipeline.engine.dispose()
    assert alive == [], (
        f"{len(alive)} of {len(held)} records wait for the cycle collector, e.g. {type(alive[0])}"
    )


def _whole(casefile: CaseFile, connection: Connection) -> dict[int, set[int]]:
    """Each offender the CaseFile holds, with the cases it holds for them, after checking that they are all the
    offender's cases in the store, each with all its victims."""
    held: dict[int, set[int]] = {}
    for offender in casefile.offenders.values():
        cases = {case.id for case in offender.cases if case.id is not None}
        stored = connection.execute(
            select(models.CASES.c.id).where(models.CASES.c.offender_id == offender.id)
        ).scalars()
        assert cases == set(stored), f"offender {offender.id} is read in part"
        for case in offender.cases:
            victims = connection.execute(
                select(models.VICTIMS.c.id).where(models.VICTIMS.c.case_id == case.id)
            ).scalars()
            assert {victim.id for victim in case.victims} == set(victims), f"case {case.id} is read in part"
        held[offender.id] = cases
    return held


def test_the_load_step_stops_between_groups_of_offenders_and_reads_only_whole_ones(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a chunk's offenders is the longest part of the load step: urgent work that comes meanwhile waits for
    one group of them, not for all, and what is left out is read, whole, when asked."""
    monkeypatch.setattr(load, "OFFENDERS_AT_ONCE", 10)  # groups that this test's small store fills
    pipeline, messages = _loaded(database_url, tmp_path)
    events, _ = pipeline.ingest_all(messages[:100])
    needs = needs_of(events)
    try:
        with pipeline.engine.connect() as connection:
            everything = CaseFile(StoreLoader(connection))
            assert everything.loader.load(everything, needs, stop=lambda: False)
            read_at_once = _whole(everything, connection)
            assert len(read_at_once) > load.OFFENDERS_AT_ONCE  # a chunk that takes more than one group

            casefile = CaseFile(StoreLoader(connection))
            # Urgent work arrives once the first group is read.
            stopped = not casefile.loader.load(casefile, needs, stop=lambda: bool(casefile.offenders))
            assert stopped
            assert 0 < len(_whole(casefile, connection)) <= load.OFFENDERS_AT_ONCE

            # Asked again without a stop, the same CaseFile reads the rest: the same as reading it at once.
            assert casefile.loader.load(casefile, needs)
            assert _whole(casefile, connection) == read_at_once
            assert {key: o.id if o else None for key, o in casefile.owners.items()} == {
                key: o.id if o else None for key, o in everything.owners.items()
            }
    finally:
        pipeline.engine.dispose()
