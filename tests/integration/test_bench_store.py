"""`hub bench` loads its case store in bulk: the rows must be ones the hub itself reads as its own history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.reference import load_units
from hub.settings import Settings
from hub.store import outbox
from hub.store.engine import make_engine
from hub.store.models import Case, ProcessedEvent, Timer, Victim
from hub.store.watch import watched_counts
from hub.tools.bench.store import cached_store, load_cases, load_or_copy
from hub.tools.traffic import Traffic
from tests.data_keys import data_keys_in

CASES = 40


def test_a_loaded_store_holds_a_settled_history(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    traffic = Traffic(seed=3, today=datetime.now(UTC).date(), first_case=0)
    try:
        load_cases(engine, load_units(Settings()), traffic, CASES)
        now = datetime.now(UTC)
        with Session(engine) as session, engine.connect() as connection:
            victims = session.scalar(select(func.count()).select_from(Victim))
            counts = watched_counts(session, now)
            # Two years on, with no worker running: every annual update is overdue, and still running.
            behind = watched_counts(session, now + timedelta(days=730))
            quick = watched_counts(session, now, with_pending=False)
            unpublished = outbox.unpublished(connection, now, now)
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


def _contents(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Case, Victim, Timer, ProcessedEvent)
            }
    finally:
        engine.dispose()


def test_a_kept_store_is_copied_on_the_next_run_with_what_loading_gave(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    units = load_units(Settings())
    kept = cached_store(tmp_path / "cache", CASES, 3, today)

    keys = data_keys_in(tmp_path / "keys")
    first = f"sqlite:///{tmp_path / 'first.db'}"
    load_or_copy(make_engine(first, keys), units, Traffic(seed=3, today=today, first_case=0), CASES, kept)
    assert kept.exists()
    second = f"sqlite:///{tmp_path / 'second.db'}"
    load_or_copy(make_engine(second, keys), units, Traffic(seed=3, today=today, first_case=0), CASES, kept)
    # Copied, not loaded again (a load stamps its rows with the time it ran).
    assert (tmp_path / "second.db").read_bytes() == kept.read_bytes()

    loaded, copied = _contents(first), _contents(second)
    assert loaded["cases"] == CASES
    assert copied == loaded
    # Another size, seed or day is another store.
    cache = tmp_path / "cache"
    others = {
        cached_store(cache, CASES + 1, 3, today),
        cached_store(cache, CASES, 4, today),
        cached_store(cache, CASES, 3, today - timedelta(days=1)),
    }
    assert len(others) == 3 and kept not in others
