"""What a bench run is asked to do (`hub bench`'s options), and where its messages go."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

BENCH_PREFIX = "bench."  # the hub's topics in a bench run
BARE_PREFIX = "benchbare."  # the bare loop's copy of the inbound topics
BARE_OUTPUT = "benchbare.out"
EVENT_HEADER = "bench.event"  # carries the event id, so the bare loop's output can be matched to its input


class Mode(StrEnum):
    THROUGHPUT = "throughput"
    RATE = "rate"
    BACKLOG = "backlog"


class DatabaseKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class BenchOptions:
    mode: Mode = Mode.THROUGHPUT
    cases: int = 10_000
    events: int = 20_000
    rate: float = 1000.0
    duration: float = 30.0
    backlog: int = 200_000
    urgent_rate: float = 5.0
    database: DatabaseKind = DatabaseKind.SQLITE
    seed: int = 1
    keep: bool = False
    store_cache: Path | None = None
    # Throughput mode: also measure this many workers in one consumer group against one (PostgreSQL only).
    workers: int = 1
