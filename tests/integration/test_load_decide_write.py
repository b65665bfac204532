"""The pipeline applies a chunk as load, decide, write: the statements it sends do not grow with the chunk."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.signatures import signers_for
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import AGENCY_SOURCES, Settings
from hub.store.engine import make_engine
from hub.tools.bench.events import prepare, realistic_mix
from hub.tools.bench.options import BENCH_PREFIX
from hub.tools.bench.store import load_cases
from hub.tools.traffic import Traffic
from tests.data_keys import data_keys_in

CASES = 60


def test_a_chunk_takes_the_same_few_statements_whatever_its_size(database_url: str, tmp_path: Path) -> None:
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
    pipeline = Pipeline(settings, engine, hub_codec(), units)
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
