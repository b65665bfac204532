"""`hub bench` loads its case store in bulk: the rows must be ones the hub itself reads as its own history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.bench import load_cases
from hub.reference import load_units
from hub.settings import Settings
from hub.store.models import ProcessedEvent, Victim
from hub.store.repository import CaseStore, make_engine
from hub.store.watch import watched_counts
from hub.traffic import Traffic

CASES = 40


def test_a_loaded_store_holds_a_settled_history(database_url: str) -> None:
    engine = make_engine(database_url)
    traffic = Traffic(seed=3, today=datetime.now(UTC).date(), first_case=0)
    try:
        load_cases(engine, load_units(Settings()), traffic, CASES)
        now = datetime.now(UTC)
        with Session(engine) as session:
            store = CaseStore(session)
            victims = session.scalar(select(func.count()).select_from(Victim))
            counts = watched_counts(session, now)
            # Two years on, with no worker running: every annual update is overdue, and still running.
            behind = watched_counts(session, now + timedelta(days=730))
            quick = watched_counts(session, now, with_pending=False)
            unpublished = store.unpublished(now, now)
            applied = session.scalar(select(func.count()).select_from(ProcessedEvent))
        # Every victim has had a first contact and waits for an annual update; nothing is due or unanswered.
        assert victims >= CASES
        assert counts.timers_pending == {"annual_update": victims}
        assert counts.timers_overdue == {}
        assert counts.urgent_unacknowledged == 0
        assert behind.timers_overdue == {"annual_update": victims}
        assert behind.timers_pending == {"annual_update": victims}
        # Between the worker's slower counts of every running timer, the others are still counted.
        assert quick.timers_pending is None
        assert (quick.timers_overdue, quick.urgent_unacknowledged) == ({}, 0)
        # The first-contact tasks are long since on their queues: the outbox has nothing to send again.
        assert unpublished == []
        # Each opening event is recorded as applied.
        assert applied == sum(len(traffic.opening_events(number)) for number in range(CASES))
    finally:
        engine.dispose()
