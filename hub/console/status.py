"""What the console page shows, gathered in one JSON document: throughput, latency, dead letters, the retry
backlog, parked events, overdue deadlines, unacknowledged urgent notifications and silent sources.

Nothing here carries a victim's details: dead letters are shown by their headers (stage, class, reason, which
the hub writes without values), never their payload; notifications by id, unit and event type.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from hub.console import queries
from hub.console.dead_letter_feed import DeadLetterFeed
from hub.console.throughput import MetricsHistory
from hub.runtime.dead_letters import DeadLetter
from hub.settings import AGENCY_SOURCES, Settings

STORE_REFRESH_SECONDS = 3.0
# The GROUP BY over every applied event is not cheap on a big store; the metric gauge covers the meantime.
SOURCES_REFRESH_SECONDS = 300.0
SILENT_AFTER_SECONDS = 30 * 60
DEAD_LETTERS_LISTED = 200
STATES = ("waiting", "replayed", "all")


@dataclass(frozen=True)
class DeadLetterQuery:
    source: str | None = None
    stage: str | None = None
    error_class: str | None = None
    state: str = "waiting"  # waiting: not replayed yet

    @classmethod
    def from_mapping(cls, values: dict) -> DeadLetterQuery:
        def text(name: str) -> str | None:
            value = values.get(name)
            return str(value)[:100] if value else None

        state = text("state") or "waiting"
        return cls(
            text("source"), text("stage"), text("error_class"), state if state in STATES else "waiting"
        )

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value]
        return " ".join(parts)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ConsoleStatus:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        feed: DeadLetterFeed,
        history: MetricsHistory,
        consuming: Callable[[], bool],
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.feed = feed
        self.history = history
        self.consuming = consuming
        self.clock = clock
        self._store: dict | None = None
        self._store_read_at = 0.0
        self._store_lock = asyncio.Lock()
        self._last_applied: dict[str, datetime] = {}
        self._sources_read_at = 0.0
        self.replayed: dict[str, queries.Replayed] = {}
        self.purged: set[tuple[int, int]] = set()

    # the case store, read at most every STORE_REFRESH_SECONDS whatever the number of open pages

    def _read_store(self, now: datetime, with_sources: bool) -> dict:
        store = {
            "parked": queries.parked(self.engine, now),
            "overdue": queries.overdue(self.engine, now),
            "urgent": queries.urgent_unacknowledged(self.engine, now),
            "replayed": queries.replayed_dead_letters(self.engine, now),
            "purged": queries.purged_dead_letters(self.engine),
        }
        if with_sources:
            store["last_applied"] = queries.last_event_per_source(self.engine)
        return store

    async def refresh_store(self, force: bool = False) -> dict:
        async with self._store_lock:
            fresh = time.monotonic() - self._store_read_at < STORE_REFRESH_SECONDS
            if self._store is None or force or not fresh:
                with_sources = time.monotonic() - self._sources_read_at > SOURCES_REFRESH_SECONDS
                store = await asyncio.to_thread(self._read_store, self.clock(), with_sources)
                if with_sources:
                    self._last_applied = store.pop("last_applied")
                    self._sources_read_at = time.monotonic()
                self.replayed = store.pop("replayed")
                self.purged = store.pop("purged")
                self._store = store
                self._store_read_at = time.monotonic()
            return self._store

    # dead letters

    def dead_letters(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Those the query shows, newest first."""
        chosen = []
        for letter in reversed(self.feed.letters.values()):
            if (letter.partition, letter.offset) in self.purged:
                continue
            replayed = letter.id in self.replayed
            if (query.state == "waiting" and replayed) or (query.state == "replayed" and not replayed):
                continue
            if query.source and self.settings.source_of_topic(letter.original_topic) != query.source:
                continue
            if query.stage and letter.header("hub.error.stage") != query.stage:
                continue
            if query.error_class and letter.header("hub.error.class") != query.error_class:
                continue
            chosen.append(letter)
        return chosen

    def _dead_letter_view(self, query: DeadLetterQuery, now: datetime) -> dict:
        shown = self.dead_letters(query)
        present = [
            letter
            for letter in self.feed.letters.values()
            if (letter.partition, letter.offset) not in self.purged
        ]
        waiting = [letter for letter in present if letter.id not in self.replayed]
        items = []
        for letter in shown[:DEAD_LETTERS_LISTED]:
            summary = letter.summary(self.settings, now)
            replay = self.replayed.get(letter.id)
            items.append(
                {
                    "id": summary["id"],
                    "source": summary["source"],
                    "stage": summary["stage"],
                    "error_class": summary["error_class"],
                    "reason": summary["reason"],
                    "attempts": summary["attempts"],
                    "failed_at": summary["failed_at"],
                    "age_seconds": summary["age_seconds"],
                    "replayed": {"at": replay.at.isoformat(), "by": replay.by} if replay else None,
                    # A replay that failed again is a new dead letter; it says which one it replayed.
                    "replay_of": letter.header("hub.replay.of") or None,
                }
            )

        def facet(values: list[str | None]) -> list[dict]:
            return [{"value": v, "count": n} for v, n in sorted(Counter(v for v in values if v).items())]

        return {
            "waiting": len(waiting),
            "total": len(present),
            "matching": len(shown),
            "items": items,
            "filter": vars(query),
            "sources": facet([self.settings.source_of_topic(letter.original_topic) for letter in waiting]),
            "stages": facet([letter.header("hub.error.stage") for letter in waiting]),
            "error_classes": facet([letter.header("hub.error.class") for letter in waiting]),
            "loading": not self.feed.caught_up,
            "problem": self.feed.problem,
            "not_kept": self.feed.dropped,
        }

    # silent sources

    def _silent_sources(self, last_event: dict[str, float], now: datetime) -> list[dict]:
        rows = []
        for source in AGENCY_SOURCES:
            heard = [t for t in (last_event.get(source), self._last_applied.get(source)) if t is not None]
            seen = max(
                (t.timestamp() if isinstance(t, datetime) else float(t) for t in heard if t), default=None
            )
            age = round(now.timestamp() - seen) if seen else None
            rows.append(
                {
                    "source": source,
                    "last_event_age_seconds": age,
                    "silent": age is None or age > SILENT_AFTER_SECONDS,
                }
            )
        return rows

    async def status(self, query: DeadLetterQuery) -> dict:
        store = await self.refresh_store()
        now = self.clock()
        throughput = self.history.view(AGENCY_SOURCES)
        sources = self._silent_sources(throughput.pop("last_event"), now)
        by_source = {row["source"]: row for row in sources}
        for row in throughput["sources"]:
            row["last_event_age_seconds"] = by_source.get(row["source"], {}).get("last_event_age_seconds")
        return {
            "now": now.isoformat(),
            "consuming": self.consuming(),
            "throughput": throughput,
            "dead_letters": self._dead_letter_view(query, now),
            "retry": throughput.pop("retry"),
            "parked": store["parked"],
            "overdue": store["overdue"],
            "urgent": store["urgent"],
            "silent_sources": {
                "after_seconds": SILENT_AFTER_SECONDS,
                "silent": [row for row in sources if row["silent"]],
                "all": sources,
            },
        }
