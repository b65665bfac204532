"""An ordinary batch steps aside for urgent work, between two events or in the middle of looking up the next
ones, and loses and repeats nothing by it.

The worker's pipeline on a real database (SQLite and PostgreSQL), no broker: a batch of realistic traffic is
applied once straight through (on a SQLite reference store) and once with urgent work arriving part-way, the
rest handed back to `Pipeline.apply` as the worker does once the urgent batch has gone.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.signatures import signers_for
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import AGENCY_SOURCES, Settings
from hub.store.engine import make_engine
from hub.store.models import NOTIFICATIONS, ProcessedEvent
from hub.tools.bench.events import prepare, realistic_mix
from hub.tools.bench.store import load_cases
from hub.tools.traffic import Traffic
from tests.data_keys import data_keys_in
from tests.integration.conftest import with_keys

CASES = 30
EVENTS = 60


def _batch(traffic: Traffic, settings: Settings, keys: Path) -> list[InboundMessage]:
    signers = signers_for(KeysDirectory(with_keys(keys)), list(AGENCY_SOURCES))
    events = prepare(realistic_mix(traffic, CASES, EVENTS, random.Random(5)), signers)
    return [
        InboundMessage(settings.topic_prefix + event.topic, 0, offset, None, event.key, event.value, [])
        for offset, event in enumerate(events)
    ]


def _pipeline(database_url: str, traffic: Traffic, keys: Path) -> tuple[Pipeline, Settings]:
    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="x.")
    engine = make_engine(database_url, data_keys_in(keys))
    load_cases(engine, load_units(settings), traffic, CASES)
    return Pipeline(settings, engine, hub_codec(), load_units(settings)), settings


def _applied(pipeline: Pipeline) -> int:
    with Session(pipeline.engine) as session:
        return session.scalar(select(func.count()).select_from(ProcessedEvent))


# The pipeline asks whether urgent work waits before it begins a transaction, between its look-up queries and
# groups of offenders, and before each event: urgent work that arrives at the first question finds nothing begun,
# at the third the look-up under way, at the tenth some events applied.
@pytest.mark.parametrize(
    "arrives_at_question", [1, 3, 10], ids=["before the transaction", "during the look-up", "between events"]
)
def test_a_batch_that_yields_ends_as_one_applied_straight_through(
    database_url: str, tmp_path: Path, arrives_at_question: int
) -> None:
    today = datetime.now(UTC).date()
    reference, settings = _pipeline(
        f"sqlite:///{tmp_path / 'reference.db'}", Traffic(1, today, first_case=0), tmp_path / "keys"
    )
    yielding, _ = _pipeline(database_url, Traffic(1, today, first_case=0), tmp_path / "keys")
    messages = _batch(Traffic(1, today, first_case=0), settings, tmp_path / "keys")
    try:
        loaded = _applied(yielding)
        straight = reference.process(messages)
        assert straight.dead_letters == [] and straight.transient == [] and straight.deferred == []

        asked: list[int] = []

        def urgent_work_waits() -> bool:
            asked.append(1)
            return len(asked) >= arrives_at_question

        first = yielding.process(messages, should_yield=urgent_work_waits)
        # It stopped at once: what it applied is committed, the rest came back in publication order.
        assert first.dead_letters == [] and first.transient == []
        applied_first = _applied(yielding) - loaded
        assert len(first.deferred) == EVENTS - applied_first
        if arrives_at_question < 10:
            assert applied_first == 0  # it stepped aside before applying any
        else:
            assert 0 < applied_first < EVENTS
        published = [ingested.event.envelope.published_at for ingested in first.deferred]
        assert published == sorted(published)

        rest = yielding.apply(first.deferred)
        assert rest.dead_letters == [] and rest.transient == [] and rest.deferred == []
        # Every event applied once, and the victims' units get the same notifications as without the yield.
        assert _applied(yielding) - loaded == EVENTS
        made = [n.notification_id for n in (*first.notifications, *rest.notifications)]
        assert len(made) == len(set(made))
        assert sorted(made) == sorted(n.notification_id for n in straight.notifications)
        assert straight.notifications  # the batch is one that tells victims something

        # Handed in again (a redelivery after a crash), nothing is applied or sent twice.
        again = yielding.process(messages)
        assert again.notifications == [] and _applied(yielding) - loaded == EVENTS
    finally:
        reference.engine.dispose()
        yielding.engine.dispose()


def test_an_urgent_transaction_leaves_marking_published_to_the_next_ordinary_one(
    database_url: str, tmp_path: Path
) -> None:
    """An urgent batch's transaction does its own work only, so that it is short; what the broker has confirmed
    meanwhile is marked published by the next ordinary transaction, not lost."""
    today = datetime.now(UTC).date()
    pipeline, settings = _pipeline(database_url, Traffic(1, today, first_case=0), tmp_path / "keys")
    messages = _batch(Traffic(1, today, first_case=0), settings, tmp_path / "keys")
    try:
        first = pipeline.process(messages[:30])
        sent = [n.notification_id for n in first.notifications]
        assert sent
        pipeline.published(sent, datetime.now(UTC))

        urgent, _ = pipeline.ingest_all(messages[30:31])
        pipeline.apply(urgent, urgent=True)
        assert _unpublished(pipeline, sent) == len(sent)

        pipeline.process(messages[31:])
        assert _unpublished(pipeline, sent) == 0
    finally:
        pipeline.engine.dispose()


def _unpublished(pipeline: Pipeline, notification_ids: list[str]) -> int:
    with pipeline.engine.connect() as connection:
        return connection.scalar(
            select(func.count())
            .select_from(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.notification_id.in_(notification_ids), NOTIFICATIONS.c.published_at.is_(None)
            )
        )
