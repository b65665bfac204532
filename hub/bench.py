"""`hub bench`: how fast the hub carries agency events to the unit queues, measured end to end.

One run starts everything it measures and stops it again: an embedded Tansu broker on a free loopback port, a
case store in a temporary directory (SQLite, or a scratch PostgreSQL database) migrated and bulk-loaded with
`--cases` notifiable cases, and one real `hub worker` process. Events come from `hub.traffic` (the same
generator as `hub simulate`): follow-ups about the loaded cases in realistic proportions, plus new cases
opened now and then. Every event is validated and Avro-encoded before the clock starts, so the publisher is
not what is measured.

Latency is per notification: the time the bench consumed it from its `vlo.<unit>` queue minus the time the
bench handed its source event to the producer (the notification's `source_event_ids` name the event). The
throughput is events / (first publish to last notification consumed). In the same run the same messages go
through a bare aiokafka consume-and-produce loop (its own process, its own copy of the topics) timed the
same way; the ratio of the two says how much of the broker's speed the hub keeps.

Modes:
- `throughput` (default): publish every event as fast as possible; hub, then the bare loop.
- `rate`: offer `--rate` events per second for `--duration` seconds; latency percentiles.
- `backlog`: publish a backlog of ordinary events before the worker starts, then, while it drains, publish
  urgent events at `--urgent-rate` per second; urgent latency is reported on its own, and split at the
  notification's record timestamp (set by the worker's producer as it takes the notification) into the time
  until the worker sent it and the time from then until the bench read it.

Progress goes to standard error; a table and one machine-readable last line go to standard output.

Loading a million cases takes 8 to 13 minutes. With `--store-cache DIR` a SQLite store is kept there once loaded
and copied on later runs with the same cases and seed, the same day, and the same loader (`cached_store`).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypedDict, cast

import typer

from hub.settings import AGENCY_SOURCES, Settings  # the CLI has loaded it already

if TYPE_CHECKING:
    import subprocess

    from sqlalchemy import Engine

    from hub.store.encryption import DataKeys
    from routing.units import UnitDirectory

BENCH_PREFIX = "bench."  # the hub's topics in a bench run
BARE_PREFIX = "benchbare."  # the bare loop's copy of the inbound topics
BARE_OUTPUT = "benchbare.out"
# Events whose signature check and sealing are timed alone, for the report.
PROTECTION_SAMPLE = 5000
EVENT_HEADER = "bench.event"  # carries the event id, so the bare loop's output can be matched to its input
POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LOAD_CHUNK = 10_000  # cases per bulk-insert transaction
# A loaded case's history is this old; its annual update is due in about a year.
HISTORY_AGE = timedelta(days=30)
HISTORY_EVENT_IDS = 0xB0  # the top bits of loaded events' ids: apart from the ids events get when published
HISTORY_PAYLOAD = bytes(600)  # about the size of an encoded notification
WORKER_READY_SECONDS = 120.0
# Chance that the next event opens a new case (a sentence, a referral, an allocation) rather than following one
# up: the traffic generator's own proportion when it says, else this.
NEW_CASE_SHARE = 1 / 11


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


class _Sizes(TypedDict, total=False):
    """Sizes that replace BenchOptions' defaults."""

    cases: int
    events: int
    duration: float
    backlog: int


QUICK: _Sizes = {"cases": 1_000, "events": 4_000, "duration": 8.0, "backlog": 8_000}


# ---- pure parts: percentiles and the report's last line -------------------------------------------------------


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of values sorted ascending: the smallest value with at least q% at or below it."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[rank - 1]


def summarise(values: Iterable[float]) -> LatencySummary | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return LatencySummary(
        len(ordered),
        percentile(ordered, 50),
        percentile(ordered, 95),
        percentile(ordered, 99),
        ordered[-1],
    )


def last_line(throughput_eps: float, bare_eps: float, p99_ms: float, rss_mb: float) -> str:
    """The line a checker reads: integers, and the hub/bare ratio to two places."""
    ratio = throughput_eps / bare_eps if bare_eps > 0 else 0.0
    return (
        f"throughput_eps={round(throughput_eps)} bare_eps={round(bare_eps)} ratio={ratio:.2f} "
        f"p99_ms={round(p99_ms)} rss_mb={round(rss_mb)}"
    )


# ---- progress ----------------------------------------------------------------------------------------------------

_START = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---- events ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedEvent:
    """An event validated and encoded before the clock starts."""

    source: str
    topic: str  # without the deployment's prefix: where the agency publishes it (its urgent lane, or events)
    key: bytes | None
    value: bytes
    event_id: str
    event_type: str
    urgent: bool
    headers: tuple[tuple[str, bytes], ...] = ()  # the agency's signature


def _unprefixed_settings() -> Settings:
    return Settings(topic_prefix="")


def _topic_for(settings: Settings, source: str, event_type: str) -> str:
    """The topic an agency publishes this event to: its urgent lane where the hub has one, else its events."""
    topic_for = getattr(settings, "topic_for", None)
    return topic_for(source, event_type) if topic_for else settings.inbound_topic(source)


def _inbound_topics(prefix: str) -> list[str]:
    """Every agency topic the hub consumes (events and, where the hub has them, urgent lanes) under a prefix."""
    settings = Settings(topic_prefix=prefix)
    lanes = [settings.inbound_topic]
    if hasattr(settings, "urgent_topic"):
        lanes.append(settings.urgent_topic)
    return [lane(source) for source in AGENCY_SOURCES for lane in lanes]


def _traffic_module() -> Any:
    try:
        import hub.traffic as traffic
    except ImportError as error:  # written alongside the bench; say so rather than fail obscurely
        raise typer.BadParameter(f"hub.traffic is not available: {error}") from None
    return traffic


def realistic_mix(traffic: Any, cases: int, count: int, rng: random.Random) -> list[Any]:
    """Follow-ups about random loaded cases, with a few new cases opened (numbered after the loaded ones)."""
    events: list[Any] = []
    next_case = cases
    share = getattr(sys.modules[type(traffic).__module__], "NEW_CASE_CHANCE", NEW_CASE_SHARE)
    while len(events) < count:
        if rng.random() < share:
            events.extend(traffic.opening_events(next_case))
            next_case += 1
        else:
            events.append(traffic.follow_up(rng.randrange(cases)))
    return events[:count]


def split_by_urgency(traffic: Any, cases: int, ordinary: int, urgent: int, rng: random.Random) -> tuple:
    """`ordinary` non-urgent follow-ups and `urgent` urgent ones, about random loaded cases."""
    calm: list[Any] = []
    alarming: list[Any] = []
    while len(calm) < ordinary or len(alarming) < urgent:
        event = traffic.follow_up(rng.randrange(cases))
        if event.urgent and len(alarming) < urgent:
            alarming.append(event)
        elif not event.urgent and len(calm) < ordinary:
            calm.append(event)
    return calm, alarming


def prepare(simulated: Iterable[Any], signers: Mapping[str, Any]) -> list[PreparedEvent]:
    """Validate, encode and sign, as an agency's publisher would (`hub publish`)."""
    from connectors.avro import hub_codec
    from connectors.publisher import event_from_json, message_key
    from schemas import event_schemas

    codec = hub_codec()
    schemas = event_schemas()
    unprefixed = _unprefixed_settings()
    prepared = []
    for item in simulated:
        event = event_from_json(item.fields, item.source, datetime.now(UTC))
        event_type = event.envelope.event_type
        topic, key = _topic_for(unprefixed, item.source, event_type), message_key(event)
        value = codec.encode(schemas[event_type], event.model_dump())
        prepared.append(
            PreparedEvent(
                source=item.source,
                topic=topic,
                key=key,
                value=value,
                event_id=str(event.envelope.event_id),
                event_type=event_type,
                urgent=item.urgent,
                headers=tuple(signers[item.source].headers(BENCH_PREFIX + topic, key, value)),
            )
        )
    return prepared


# ---- the case store ----------------------------------------------------------------------------------------------


def create_database(kind: DatabaseKind, directory: Path) -> tuple[str, str | None]:
    """(url, scratch PostgreSQL database name to drop afterwards)."""
    if kind is DatabaseKind.SQLITE:
        return f"sqlite:///{directory / 'hub.db'}", None
    from sqlalchemy import create_engine, text

    name = f"hub_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def case_rows(number: int, opening: Sequence[Any], units: UnitDirectory, now: datetime) -> dict[str, list]:
    """The rows the hub would hold for case `number` after its opening events and a first contact: offender,
    identifiers, case, victims and allocations, and their history (the events applied, the first-contact task
    published, the referral and first-contact timers stopped, an annual update running). A store of a million
    cases is then as large as one the hub built itself, so its per-event cost is the one production would see.
    Ids are derived from the number, so chunks can be inserted independently."""
    from routing import eligibility
    from routing.decisions import Action, Kind, Priority, notification_id
    from routing.timers import TimerKind

    ids = _traffic_module().case_identifiers(number)
    rows: dict[str, list] = {
        "offenders": [],
        "identifiers": [],
        "cases": [],
        "victims": [],
        "allocations": [],
        "processed": [],
        "notifications": [],
        "timers": [],
    }
    offender_id = case_id = number + 1
    applied_at = now - HISTORY_AGE
    rows["offenders"].append({"id": offender_id})

    def timer(kind: TimerKind, victim_id: int | None, running: bool) -> None:
        rows["timers"].append(
            {
                "id": number * 32 + len(rows["timers"]) + 1,  # one for the case and two a victim, up to 10
                "kind": kind.value,
                "case_id": case_id,
                "victim_id": victim_id,
                "cause": "",
                "due_at": now + HISTORY_AGE * 12 if running else applied_at,
                "started_at": applied_at,
                "stopped_at": None if running else applied_at,
            }
        )

    identifiers = {
        "case_ref": ids.case_ref,
        "noms_number": ids.noms_number,
        "crn": ids.crn,
        "pnc": ids.pnc,
    }
    victims = 0
    for index, event in enumerate(opening):
        fields = event.fields
        event_id = str(uuid.UUID(int=(HISTORY_EVENT_IDS << 64) | (number << 4) | index))
        rows["processed"].append(
            {
                "event_id": event_id,
                "event_type": fields["event_type"],
                "source": event.source,
                "processed_at": applied_at,
            }
        )
        if fields["event_type"] == "SentenceImposed":
            timer(TimerKind.REFERRAL_OVERDUE, None, running=False)  # stopped by the referral below
            offences = tuple(
                eligibility.Offence(
                    o["code"], eligibility.Classification(o["classification"]), o["description"]
                )
                for o in fields["offences"]
            )
            term = fields.get("custodial_term_months")
            youth = bool(fields.get("youth", False))
            result = eligibility.assess(
                eligibility.Sentence(eligibility.Disposal(fields["disposal"]), term, offences, youth)
            )
            if cro := fields.get("cro") or (fields.get("offender") or {}).get("cro"):
                identifiers["cro"] = cro
            rows["cases"].append(
                {
                    "id": case_id,
                    "case_ref": ids.case_ref,
                    "offender_id": offender_id,
                    "court_code": fields["court_code"],
                    "sentence_date": date.fromisoformat(fields["sentence_date"]),
                    "youth": youth,
                    "offences": [dict(o) for o in fields["offences"]],
                    "eligibility_status": result.status.value,
                    "eligibility_rule": result.rule,
                    "eligibility_basis": result.basis,
                    "owning_unit_code": units.unit_for_court(fields["court_code"]).code,
                    "status": "open",
                    "needs_unit_decision": False,
                    "opened_at": now,
                }
            )
        elif fields["event_type"] == "DiscretionaryCaseOpened":
            case = rows["cases"][-1]
            opened = eligibility.open_discretionary(
                eligibility.Eligibility(
                    eligibility.EligibilityStatus(case["eligibility_status"]),
                    case["eligibility_rule"],
                    case["eligibility_basis"],
                    None,
                ),
                fields["unit_code"],
                fields["reason"],
            )
            case["eligibility_status"] = opened.status.value
            case["eligibility_rule"] = opened.rule
            case["eligibility_basis"] = opened.basis
            if units.unit_by_code(fields["unit_code"]) is not None:
                case["owning_unit_code"] = fields["unit_code"]
        elif fields["event_type"] == "VictimReferred":
            person = fields["victim"]
            postcode = person["address"]["postcode"]
            victim_id = number * 10 + victims + 1  # up to 10 victims a case keeps ids unique across chunks
            rows["victims"].append(
                {
                    "id": victim_id,
                    "case_id": case_id,
                    "person_ref": person["person_ref"],
                    "name": person["name"],
                    "relationship_to_offence": person["relationship"],
                    "postcode": postcode,
                    "unit_code": units.resolve_unit(postcode).code,
                    "language": person.get("language"),
                    "preferred_channel": person.get("preferred_channel"),
                    "accessibility_needs": person.get("accessibility_needs"),
                    "opted_out": False,
                    "declined": False,
                }
            )
            victims += 1
            # The first-contact task the referral raised, long since on the unit's queue; the contact that
            # followed stopped its timer and started the annual update.
            rows["notifications"].append(
                {
                    "notification_id": notification_id(
                        Kind.TASK, f"first_contact:{event_id}", ids.case_ref, person["person_ref"]
                    ),
                    "kind": Kind.TASK.value,
                    "case_id": case_id,
                    "unit_code": rows["victims"][-1]["unit_code"],
                    "event_type": "VictimReferred",
                    "action": Action.TASK.value,
                    "priority": Priority.NORMAL.value,
                    "topic": f"{BENCH_PREFIX}vlo.{rows['victims'][-1]['unit_code']}",
                    "key": ids.case_ref.encode(),
                    "payload": HISTORY_PAYLOAD,
                    "source_event_id": event_id,
                    "person_ref": person["person_ref"],
                    "created_at": applied_at,
                    "event_published_at": applied_at,
                    "published_at": applied_at,
                }
            )
            timer(TimerKind.FIRST_CONTACT, victim_id, running=False)
            timer(TimerKind.ANNUAL_UPDATE, victim_id, running=True)
        elif fields["event_type"] == "CaseAllocated":
            rows["allocations"].append(
                {
                    "id": number * 10 + len(rows["allocations"]) + 1,
                    "case_id": case_id,
                    "unit_code": fields["unit_code"],
                    "vlo_id": fields["vlo_id"],
                }
            )
    rows["identifiers"] = [
        {"id": number * 10 + i + 1, "offender_id": offender_id, "kind": kind, "value": value}
        for i, (kind, value) in enumerate(identifiers.items())
    ]
    return rows


def load_cases(engine: Engine, units: UnitDirectory, traffic: Any, count: int) -> float:
    """Bulk-insert `count` cases as their opening events would have left them; returns the seconds it took."""
    from sqlalchemy import Table, text

    from hub.store.models import (
        Base,
        Case,
        CaseAllocation,
        Notification,
        Offender,
        OffenderIdentifier,
        ProcessedEvent,
        Timer,
        Victim,
    )

    def table_of(model: type[Base]) -> Table:
        return Base.metadata.tables[model.__tablename__]  # the model's __table__, typed as a Table

    tables = {  # in an order the foreign keys allow
        "offenders": table_of(Offender),
        "identifiers": table_of(OffenderIdentifier),
        "cases": table_of(Case),
        "victims": table_of(Victim),
        "allocations": table_of(CaseAllocation),
        "processed": table_of(ProcessedEvent),
        "notifications": table_of(Notification),
        "timers": table_of(Timer),
    }
    started = time.monotonic()
    now = datetime.now(UTC)
    last_report = started
    for first in range(0, count, LOAD_CHUNK):
        chunk: dict[str, list] = {name: [] for name in tables}
        for number in range(first, min(count, first + LOAD_CHUNK)):
            for name, rows in case_rows(number, traffic.opening_events(number), units, now).items():
                chunk[name].extend(rows)
        with engine.begin() as connection:
            for name, table in tables.items():
                if chunk[name]:
                    connection.execute(table.insert(), chunk[name])
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            say(f"loaded {first + LOAD_CHUNK:,} of {count:,} cases")
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Explicit ids bypassed the sequences; new rows must not collide with loaded ones.
            for table in (table for table in tables.values() if "id" in table.c):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                    )
                )
        connection.execute(text("ANALYZE"))  # the planner sees a large store, as in production
    return time.monotonic() - started


def cached_store(cache: Path, cases: int, seed: int, today: date) -> Path:
    """Where a loaded SQLite store is kept for later runs. A loaded case's history is dated from the day it is
    loaded, and its rows are what this module and the traffic generator make, so the name holds the day and a
    digest of both sources: a store loaded by other code, or on another day, is not reused."""
    traffic_module = _traffic_module()
    loader = hashlib.sha256(Path(__file__).read_bytes() + Path(traffic_module.__file__).read_bytes())
    return cache / f"cases-{cases}-seed-{seed}-{today.isoformat()}-{loader.hexdigest()[:12]}.db"


def share_data_keys(keys_dir: Path, cache: Path | None) -> DataKeys:
    """The data keys of a bench run's keys directory. A kept store (cached_store) is encrypted at rest like any
    other, so its data key is kept beside it and given to every run that copies it."""
    from connectors.keys import KeysDirectory, write_data_key
    from hub.store.encryption import DataKeys

    keys = KeysDirectory(keys_dir)
    if cache is not None:
        kept = cache / "data-keys"
        if any(kept.glob("*.key")):
            shutil.copytree(kept, keys.data, dirs_exist_ok=True)
        else:
            if not keys.data_keys():
                write_data_key(keys.data)
            shutil.copytree(keys.data, kept, dirs_exist_ok=True)
    if not keys.data_keys():
        write_data_key(keys.data)
    return DataKeys(keys.data_keys(), keys.data)


def load_or_copy(engine: Engine, units: UnitDirectory, traffic: Any, count: int, kept: Path) -> float:
    """Fill a migrated, empty SQLite store from `kept` if it exists; else load it and keep a copy there. Returns
    the seconds it took. The engine is disposed of either way."""
    from sqlalchemy import text

    started = time.monotonic()
    database = Path(engine.url.database or "")
    if kept.exists():
        engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(kept, database)
        say(f"case store copied from {kept}")
    else:
        load_cases(engine, units, traffic, count)
        with engine.connect() as connection:  # everything in the database file itself, none in its WAL
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        engine.dispose()
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(".partial")
        shutil.copyfile(database, partial)
        partial.rename(kept)  # whole or not there: a run stopped while copying leaves no half store to reuse
        say(f"case store kept in {kept}")
    return time.monotonic() - started


# ---- processes ---------------------------------------------------------------------------------------------------


def rss_peak_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    from hub.processes import spawn

    return spawn([sys.executable, "-m", "hub.cli", "worker"], log, env=env)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    from hub.processes import became_healthy

    if not became_healthy(url, process, WORKER_READY_SECONDS):
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        raise RuntimeError(f"worker not consuming after {WORKER_READY_SECONDS:.0f}s; see {log}")


def scrape_batches(web: str) -> tuple[float, float]:
    """(batches applied, seconds spent applying them) from the worker's Prometheus metrics; zeros if unknown."""
    batches = seconds = 0.0
    try:
        with urllib.request.urlopen(f"{web}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return batches, seconds
    for line in text.splitlines():
        if line.startswith("hub_batch_processing_seconds_count"):
            batches += float(line.rsplit(" ", 1)[1])
        elif line.startswith("hub_batch_processing_seconds_sum"):
            seconds += float(line.rsplit(" ", 1)[1])
    return batches, seconds


def wait_for_line(log: Path, line: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if log.exists() and line in log.read_text():
            return
        time.sleep(0.1)
    raise RuntimeError(f"no {line!r} in {log} after {timeout:.0f}s")


# ---- measuring ---------------------------------------------------------------------------------------------------


class Arrival(NamedTuple):
    """One record read at the far end."""

    at: float  # perf_counter when consumed
    timestamp_ms: int  # the record's own timestamp: when the producer that wrote it took it (wall clock)
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Arrivals:
    """What came out of the far end, with when it was consumed (decoded after the run, off the clock).

    Kept as plain tuples, not the consumer's record objects nor `Arrival`s: a long run keeps hundreds of thousands,
    and Python's cycle collector walks every object that can hold others, pausing the reader (and the paced
    publisher beside it) for longer the more there are. It leaves out exact tuples of plain values."""

    _rows: list[tuple[float, int, bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=list)
    last: float = 0.0
    # Converts a record's wall-clock timestamp to the perf_counter that stamps arrivals and publishing.
    wall_minus_perf: float = field(default_factory=lambda: time.time() - time.perf_counter())

    def add(self, at: float, record: Any) -> None:
        self._rows.append((at, record.timestamp, record.value, tuple(record.headers or ())))
        self.last = at

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Arrival]:
        return map(Arrival._make, self._rows)


@dataclass
class Outcome:
    """Latencies (ms) of one measured stream, per notification (hub) or per message (bare loop)."""

    events: int
    first_publish: float
    last_arrival: float
    latencies: list[float]  # ordinary events
    urgent_latencies: list[float]
    results: int  # notifications (hub) or output messages (bare loop)
    complete: bool
    publish_seconds: float = 0.0
    # Each latency's first part: from publishing until the worker handed the notification to its producer.
    urgent_until_sent: list[float] = field(default_factory=list)
    until_sent: list[float] = field(default_factory=list)  # ordinary events

    @property
    def seconds(self) -> float:
        return max(self.last_arrival - self.first_publish, 1e-9)

    @property
    def eps(self) -> float:
        return self.events / self.seconds


class Publisher:
    """Sends prepared events to a set of topics, recording when each was handed to the producer."""

    def __init__(self, address: str, prefix: str, *, client_options: Mapping[str, Any] | None = None) -> None:
        from aiokafka import AIOKafkaProducer

        self.prefix = prefix
        self.sent: dict[str, float] = {}
        self.urgent: set[str] = set()
        self.offsets: dict[tuple[str, int], int] = {}
        self._pending: list[Any] = []
        self.producer = AIOKafkaProducer(
            bootstrap_servers=address,
            acks="all",
            linger_ms=0,
            max_batch_size=256 * 1024,
            **(client_options or {}),
        )

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(self, event: PreparedEvent) -> None:
        self.sent[event.event_id] = time.perf_counter()
        if event.urgent:
            self.urgent.add(event.event_id)
        future = await self.producer.send(
            self.prefix + event.topic,
            event.value,
            key=event.key,
            headers=[(EVENT_HEADER, event.event_id.encode()), *event.headers],
        )
        self._pending.append(future)

    async def settle(self) -> None:
        """Wait for the broker to have everything sent so far; remember how far each partition goes."""
        for metadata in await asyncio.gather(*self._pending):
            end = (metadata.topic, metadata.partition)
            self.offsets[end] = max(self.offsets.get(end, 0), metadata.offset + 1)
        self._pending.clear()

    async def send_all(self, events: Sequence[PreparedEvent]) -> float:
        started = time.perf_counter()
        for event in events:
            await self.send(event)
        await self.settle()
        return time.perf_counter() - started

    async def send_paced(
        self, events: Sequence[PreparedEvent], rate: float, stop: asyncio.Event | None = None
    ) -> None:
        """Offer events at `rate` per second (catching up if the loop falls behind), until done or stopped."""
        started = time.perf_counter()
        for index, event in enumerate(events):
            if stop is not None and stop.is_set():
                break
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
            await self.send(event)
            if index % 100 == 99:
                await self.settle()
        await self.settle()


# Tansu answers a fetch only when its wait is over, even if data arrives sooner, so the reader's wait adds about
# half of itself to each latency it measures. But every fetch names each unit queue's partitions, and over a
# long drain Tansu's cost of answering grows (why is not known): at 5 ms the broker went from a third of a core
# to nine tenths over a 200,000-event drain, the machine ran out of CPU, and urgent notifications the worker had
# sent within 75 ms were read up to 2.6 s later (2026-11-24; at 50 ms: 20 to 44 %, read within 75 ms).
READER_FETCH_WAIT_MS = 20


class QueueWatcher:
    """Consumes the far end (unit queues, or the bare loop's output) from the beginning, stamping arrivals."""

    def __init__(
        self, address: str, topics: list[str], *, client_options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        self.topics = topics
        self.client_options = dict(client_options or {})
        self.arrivals = Arrivals()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> QueueWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 30)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.address,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=READER_FETCH_WAIT_MS,
            **self.client_options,
        )
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            for topic in self.topics:
                found = None
                for _ in range(50):
                    found = consumer.partitions_for_topic(topic)
                    if found:
                        break
                    await consumer.topics()
                    await asyncio.sleep(0.1)
                partitions.extend(TopicPartition(topic, p) for p in sorted(found or ()))
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._ready.set()
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=50, max_records=5000)
                at = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        self.arrivals.add(at, record)
        finally:
            await consumer.stop()


class GroupProgress:
    """How far the worker's consumer groups have committed, to tell when it has consumed everything published.
    Each partition is read by one of the groups (the urgent lane has its own), so the furthest commit counts."""

    def __init__(
        self, address: str, groups: Sequence[str], *, client_options: Mapping[str, Any] | None = None
    ) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        self.groups = groups
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=address, request_timeout_ms=10000, **(client_options or {})
        )

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.admin.close()

    async def caught_up(self, ends: dict[tuple[str, int], int]) -> bool:
        from aiokafka import TopicPartition

        partitions = [TopicPartition(t, p) for t, p in ends]
        furthest: dict[TopicPartition, int] = {}
        for group in self.groups:
            try:
                committed = await self.admin.list_consumer_group_offsets(group, partitions=partitions)
            except Exception:  # the group may not have committed yet
                continue
            for tp, meta in committed.items():
                if meta is not None and meta.offset > furthest.get(tp, -1):
                    furthest[tp] = meta.offset
        return all(furthest.get(TopicPartition(t, p), -1) >= end for (t, p), end in ends.items())


async def wait_until_done(
    watcher: QueueWatcher,
    done: Any,
    timeout: float,
    idle: float,
) -> bool:
    """Until `done()` says so and nothing has arrived for `idle` seconds, or the timeout; True if done."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        quiet = time.perf_counter() - max(watcher.arrivals.last, 0.0) >= idle
        if quiet and await done():
            return True
        await asyncio.sleep(0.2)
    return False


@dataclass
class NotificationTimes:
    """What `notification_latencies` found (ms), for notifications caused by the events the bench published."""

    latencies: list[float] = field(default_factory=list)  # ordinary events
    urgent: list[float] = field(default_factory=list)
    # The part of each urgent latency spent before the worker handed the notification to its producer (the
    # record's timestamp); the rest is the broker and the bench's own reader.
    urgent_until_sent: list[float] = field(default_factory=list)
    until_sent: list[float] = field(default_factory=list)  # the same for ordinary events
    notifications: int = 0
    last: float = 0.0

    def outcome(
        self, events: int, first_publish: float, complete: bool, publish_seconds: float = 0.0
    ) -> Outcome:
        return Outcome(
            events,
            first_publish,
            self.last,
            self.latencies,
            self.urgent,
            self.notifications,
            complete,
            publish_seconds,
            self.urgent_until_sent,
            self.until_sent,
        )


def notification_latencies(arrivals: Arrivals, publisher: Publisher, opener: Any) -> NotificationTimes:
    """Latencies of the notifications caused by the events the bench published; a notification republished by
    the outbox counts once. `opener` holds every unit's key: the bench reads all the queues."""
    from fastavro import schemaless_reader

    from schemas import notification_schema

    parsed = notification_schema().parsed
    seen: set[str] = set()
    times = NotificationTimes()
    for arrival in arrivals:
        # The notification schema is a record: fastavro reads it as a dict.
        notification = cast(
            "dict[str, Any]", schemaless_reader(io.BytesIO(opener.open(arrival.value)[10:]), parsed, None)
        )
        if notification["notification_id"] in seen:
            continue
        seen.add(notification["notification_id"])
        sources = notification["source_event_ids"] or []
        if not sources or sources[0] not in publisher.sent:
            continue
        event_id = sources[0]
        sent = publisher.sent[event_id]
        latency = (arrival.at - sent) * 1000
        until_sent = arrival.timestamp_ms - (sent + arrivals.wall_minus_perf) * 1000
        if event_id in publisher.urgent:
            times.urgent.append(latency)
            times.urgent_until_sent.append(until_sent)
        else:
            times.latencies.append(latency)
            times.until_sent.append(until_sent)
        times.last = max(times.last, arrival.at)
    times.notifications = len(seen)
    return times


def bare_latencies(arrivals: Arrivals, publisher: Publisher) -> tuple[list[float], float]:
    latencies = []
    last = 0.0
    for arrival in arrivals:
        event_id = dict(arrival.headers).get(EVENT_HEADER, b"").decode()
        if event_id in publisher.sent:
            latencies.append((arrival.at - publisher.sent.pop(event_id)) * 1000)
            last = max(last, arrival.at)
    return latencies, last


async def measured(measure: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """Run a measurement with what was prepared for it (hundreds of thousands of encoded events) frozen out of
    the cycle collector's walks: otherwise each full walk pauses the bench's reader and publisher, and the pause
    is counted as the hub's latency."""
    gc.collect()
    gc.freeze()
    try:
        return await measure()
    finally:
        gc.unfreeze()


# ---- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Report:
    options: BenchOptions
    load_seconds: float = 0.0
    store_copied: bool = False  # from --store-cache, not loaded
    events: int = 0
    event_mix: str = ""
    hub: Outcome | None = None
    bare: Outcome | None = None
    worker_rss_mb: float = 0.0
    bare_rss_mb: float = 0.0
    worker_cpu_seconds: float = 0.0
    verify_us: float = 0.0  # checking one agency signature, alone
    seal_us: float = 0.0  # sealing one record, alone
    backlog_drain_seconds: float = 0.0
    backlog_events: int = 0
    batches: float = 0.0
    batch_seconds: float = 0.0


class BenchRun:
    def __init__(self, options: BenchOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.tag = uuid.uuid4().hex[:8]
        # The bench starts its own embedded broker, plaintext on loopback: security settings in the environment,
        # meant for another broker, must not reach its clients or its workers.
        self.settings = Settings(
            topic_prefix=BENCH_PREFIX,
            app_id=f"hub-bench-{self.tag}",
            broker="",
            database_url="",
            kafka_security_protocol="PLAINTEXT",
        )
        self.report = Report(options)
        self.processes: list[subprocess.Popen[bytes]] = []

    # set-up
    def _worker_env(self, address: str, database_url: str) -> dict[str, str]:
        from hub.processes import free_port

        self.web_port = free_port()
        return {
            "HUB_BROKER": address,
            "HUB_DATABASE_URL": database_url,
            "HUB_DATA_DIR": str(self.workdir / "hub"),
            "HUB_TOPIC_PREFIX": BENCH_PREFIX,
            "HUB_APP_ID": self.settings.app_id,
            "HUB_WEB_PORT": str(self.web_port),
            "HUB_WEB_HOST": "127.0.0.1",
            "HUB_KAFKA_SECURITY_PROTOCOL": self.settings.kafka_security_protocol,
            "HUB_KEYS_DIR": str(self.keys_dir),
        }

    def _keys(self, units: list[str]) -> None:
        """Every party's keys, as `hub up` makes them: the bench signs as each agency and reads every queue."""
        from connectors.keys import KeysDirectory
        from connectors.sealing import Opener
        from connectors.signatures import signers_for

        self.keys_dir = self.workdir / "hub" / "keys"
        keys = KeysDirectory(self.keys_dir)
        cache = self.options.store_cache if self.options.database is DatabaseKind.SQLITE else None
        self.data_keys = share_data_keys(self.keys_dir, cache)
        keys.create_missing(list(AGENCY_SOURCES), units)
        self.signers = signers_for(keys, list(AGENCY_SOURCES))
        every_unit = {k: v for unit in units for k, v in keys.opening_keys(keys.unit(unit)).items()}
        self.opener = Opener(every_unit, keys.senders())

    def _protection_costs(self, events: Sequence[PreparedEvent]) -> None:
        """What checking an agency's signature and sealing a record cost, alone, on these events."""
        from connectors.keys import KeysDirectory
        from connectors.signatures import AgencyVerifier

        keys = KeysDirectory(self.keys_dir)
        sample = list(events[:PROTECTION_SAMPLE])
        verifier = AgencyVerifier(keys, list(AGENCY_SOURCES))
        verifier.agencies_without_keys()  # loads the keys before the clock starts
        started = time.perf_counter()
        for event in sample:
            verifier.verify(
                event.source, BENCH_PREFIX + event.topic, event.key, event.value, dict(event.headers)
            )
        self.report.verify_us = (time.perf_counter() - started) / max(len(sample), 1) * 1e6
        sealer = keys.sealer(keys.operations)
        assert sealer is not None
        started = time.perf_counter()
        for event in sample:
            sealer.seal(event.value)
        self.report.seal_us = (time.perf_counter() - started) / max(len(sample), 1) * 1e6

    def run(self) -> Report:
        from hub.broker import EmbeddedBroker
        from hub.processes import stop
        from hub.reference import load_units
        from hub.store.repository import make_engine

        options = self.options
        traffic_module = _traffic_module()
        traffic = traffic_module.Traffic(seed=options.seed, today=datetime.now(UTC).date(), first_case=0)
        rng = random.Random(options.seed)
        units = load_units(self.settings)
        self._keys([unit.code for unit in units.units])
        broker = EmbeddedBroker(self.workdir / "broker.log")
        scratch_db = None
        try:
            address = broker.start()
            say(f"broker on {address} (pid {broker.process.pid if broker.process else '?'})")
            database_url, scratch_db = create_database(options.database, self.workdir)
            engine = make_engine(database_url, self.data_keys)
            say(f"database {options.database.value}; loading {options.cases:,} cases")
            if options.store_cache is not None and options.database is DatabaseKind.SQLITE:
                kept = cached_store(options.store_cache, options.cases, options.seed, traffic.today)
                self.report.store_copied = kept.exists()
                self.report.load_seconds = load_or_copy(engine, units, traffic, options.cases, kept)
            else:
                self.report.load_seconds = load_cases(engine, units, traffic, options.cases)
                engine.dispose()
            say(f"loaded {options.cases:,} cases in {self.report.load_seconds:.1f}s")
            asyncio.run(self._topics(address, units))
            env = self._worker_env(address, database_url)
            if options.mode is Mode.BACKLOG:
                self._backlog(address, env, traffic, rng)
            else:
                count = int(options.rate * options.duration) if options.mode is Mode.RATE else options.events
                simulated = realistic_mix(traffic, options.cases, count, rng)
                say(f"encoding {len(simulated):,} events")
                events = prepare(simulated, self.signers)
                self._protection_costs(events)
                self._describe(events)
                self._hub(address, env, events)
                if options.mode is Mode.THROUGHPUT:
                    self._bare(address, events)
        finally:
            for process in reversed(self.processes):
                stop(process, 10)
            broker.stop()
            if scratch_db:
                drop_database(scratch_db)
        return self.report

    async def _topics(self, address: str, units: UnitDirectory) -> None:
        from hub.topics import ensure_topics, hub_topics

        names = hub_topics(self.settings, [unit.code for unit in units.units])
        names += [*_inbound_topics(BARE_PREFIX), BARE_OUTPUT]
        await ensure_topics(
            address,
            names,
            self.settings.topic_partitions,
            client_options=self.settings.kafka_client_options(),
        )
        self.unit_topics = [self.settings.unit_topic(unit.code) for unit in units.units]

    def _describe(self, events: Sequence[PreparedEvent]) -> None:
        self.report.events = len(events)
        by_source: dict[str, int] = {}
        for event in events:
            by_source[event.source] = by_source.get(event.source, 0) + 1
        urgent = sum(1 for e in events if e.urgent)
        mix = ", ".join(f"{source} {n:,}" for source, n in sorted(by_source.items(), key=lambda kv: -kv[1]))
        self.report.event_mix = f"{mix}; urgent {urgent:,}"

    def _groups(self) -> list[str]:
        from hub.lanes import ordinary_group, urgent_group

        app_id = self.settings.app_id
        return [app_id, ordinary_group(app_id), urgent_group(app_id)]

    def _start_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.workdir / "worker.log"
        worker = start_worker(env, log)
        self.processes.append(worker)
        say(f"worker pid {worker.pid} starting (log {log})")
        return worker

    def _hub(self, address: str, env: dict[str, str], events: Sequence[PreparedEvent]) -> None:
        worker = self._start_worker(env)
        wait_healthy(f"http://127.0.0.1:{self.web_port}/health", worker, self.workdir / "worker.log")
        say("worker consuming; publishing")
        timeout = 120 + len(events) / 100

        async def measure() -> Outcome:
            async with (
                QueueWatcher(
                    address, self.unit_topics, client_options=self.settings.kafka_client_options()
                ) as watcher,
                Publisher(
                    address, BENCH_PREFIX, client_options=self.settings.kafka_client_options()
                ) as publisher,
                GroupProgress(
                    address, self._groups(), client_options=self.settings.kafka_client_options()
                ) as group,
            ):
                cpu_before = cpu_seconds(worker.pid)
                first = time.perf_counter()
                if self.options.mode is Mode.RATE:
                    await publisher.send_paced(events, self.options.rate)
                    publish_seconds = time.perf_counter() - first
                else:
                    publish_seconds = await publisher.send_all(events)
                say(f"published {len(events):,} events in {publish_seconds:.1f}s; waiting for the queues")
                complete = await wait_until_done(
                    watcher, lambda: group.caught_up(publisher.offsets), timeout, idle=1.0
                )
                self.report.worker_cpu_seconds = cpu_seconds(worker.pid) - cpu_before
            times = notification_latencies(watcher.arrivals, publisher, self.opener)
            return times.outcome(len(events), first, complete, publish_seconds)

        self.report.hub = asyncio.run(measured(measure))
        self.report.worker_rss_mb = rss_peak_mb(worker.pid)
        self.report.batches, self.report.batch_seconds = scrape_batches(f"http://127.0.0.1:{self.web_port}")
        say(
            f"hub: {self.report.hub.results:,} notifications, {self.report.hub.eps:,.0f} events/s"
            + ("" if self.report.hub.complete else " (INCOMPLETE: timed out)")
        )

    def _bare(self, address: str, events: Sequence[PreparedEvent]) -> None:
        from hub.processes import spawn

        log = self.workdir / "bare.log"
        topics = _inbound_topics(BARE_PREFIX)
        bare = spawn(
            [
                sys.executable,
                "-m",
                "hub.bench",
                address,
                BARE_OUTPUT,
                str(self.settings.fetch_wait_ms),
                *topics,
            ],
            log,
            env={
                "PYTHONUNBUFFERED": "1",
                "HUB_KAFKA_SECURITY_PROTOCOL": self.settings.kafka_security_protocol,
            },
        )
        self.processes.append(bare)
        wait_for_line(log, "ready", bare, 60)
        say(f"bare aiokafka loop pid {bare.pid} consuming; publishing the same events")

        async def measure() -> Outcome:
            async with (
                QueueWatcher(
                    address, [BARE_OUTPUT], client_options=self.settings.kafka_client_options()
                ) as watcher,
                Publisher(
                    address, BARE_PREFIX, client_options=self.settings.kafka_client_options()
                ) as publisher,
            ):
                first = time.perf_counter()
                publish_seconds = await publisher.send_all(events)
                expected = len(events)

                async def done() -> bool:
                    return len(watcher.arrivals) >= expected

                complete = await wait_until_done(watcher, done, 60 + expected / 500, idle=0.0)
            latencies, last = bare_latencies(watcher.arrivals, publisher)
            return Outcome(len(events), first, last, latencies, [], len(latencies), complete, publish_seconds)

        self.report.bare = asyncio.run(measured(measure))
        self.report.bare_rss_mb = rss_peak_mb(bare.pid)
        say(f"bare loop: {self.report.bare.eps:,.0f} events/s")

    def _backlog(self, address: str, env: dict[str, str], traffic: Any, rng: random.Random) -> None:
        options = self.options
        # Enough urgent events for a long drain; publishing stops when the backlog is drained.
        urgent_pool = max(50, int(options.urgent_rate * (60 + options.backlog / 200)))
        say(
            f"encoding a backlog of {options.backlog:,} ordinary events and up to {urgent_pool:,} urgent ones"
        )
        calm, alarming = split_by_urgency(traffic, options.cases, options.backlog, urgent_pool, rng)
        backlog = prepare(calm, self.signers)
        urgent = prepare(alarming, self.signers)
        self._protection_costs(backlog)
        self._describe(backlog)
        self.report.backlog_events = len(backlog)

        async def measure() -> Outcome:
            async with (
                QueueWatcher(
                    address, self.unit_topics, client_options=self.settings.kafka_client_options()
                ) as watcher,
                Publisher(
                    address, BENCH_PREFIX, client_options=self.settings.kafka_client_options()
                ) as publisher,
                GroupProgress(
                    address, self._groups(), client_options=self.settings.kafka_client_options()
                ) as group,
            ):
                seconds = await publisher.send_all(backlog)
                backlog_ends = dict(publisher.offsets)
                say(f"backlog of {len(backlog):,} published in {seconds:.1f}s; starting the worker")
                worker = self._start_worker(env)
                started = time.perf_counter()
                await asyncio.to_thread(
                    wait_healthy,
                    f"http://127.0.0.1:{self.web_port}/health",
                    worker,
                    self.workdir / "worker.log",
                )
                say(f"worker consuming; urgent events at {options.urgent_rate}/s while it drains")
                stop = asyncio.Event()
                sender = asyncio.create_task(publisher.send_paced(urgent, options.urgent_rate, stop))
                timeout = 120 + len(backlog) / 100
                drained = await wait_until_done(
                    watcher, lambda: group.caught_up(backlog_ends), timeout, idle=0.0
                )
                self.report.backlog_drain_seconds = time.perf_counter() - started
                stop.set()
                await sender
                say(
                    f"backlog drained in {self.report.backlog_drain_seconds:.1f}s; waiting for the last urgent"
                )
                complete = drained and await wait_until_done(
                    watcher, lambda: group.caught_up(publisher.offsets), 60, idle=1.0
                )
                self.report.worker_rss_mb = rss_peak_mb(worker.pid)
            times = notification_latencies(watcher.arrivals, publisher, self.opener)
            return times.outcome(len(backlog), started, complete)

        self.report.hub = asyncio.run(measured(measure))


# ---- the report --------------------------------------------------------------------------------------------------


def _ms(summary: LatencySummary | None, attribute: str) -> str:
    return f"{getattr(summary, attribute):,.1f}" if summary else "-"


def render(report: Report) -> list[str]:
    options = report.options
    hub = report.hub
    lines = [
        f"hub bench: {options.mode.value} mode, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {options.database.value}",
        f"case store   {options.cases:,} cases, "
        f"{'copied from --store-cache' if report.store_copied else 'bulk-loaded'} in {report.load_seconds:.1f}s",
    ]
    if options.mode is Mode.BACKLOG:
        lines.append(f"backlog      {report.backlog_events:,} ordinary events ({report.event_mix})")
    else:
        lines.append(f"events       {report.events:,} ({report.event_mix})")
    if hub is None:
        return lines
    all_ms = summarise(hub.latencies + hub.urgent_latencies)
    urgent_ms = summarise(hub.urgent_latencies)
    rows: list[tuple[str, str, str]] = []
    if options.mode is Mode.BACKLOG:
        rows += [
            ("backlog drained in s", f"{report.backlog_drain_seconds:,.1f}", ""),
            (
                "drain rate, events/s",
                f"{report.backlog_events / max(report.backlog_drain_seconds, 1e-9):,.0f}",
                "",
            ),
            ("urgent notifications measured", f"{len(hub.urgent_latencies):,}", ""),
        ]
        for name in ("p50", "p95", "p99", "max"):
            rows.append((f"urgent latency {name}, ms", _ms(urgent_ms, name), ""))
        # The two parts of each urgent latency: the hub's, and the broker's and the bench reader's after it.
        until_sent = summarise(hub.urgent_until_sent)
        after_sent = summarise(
            t - u for t, u in zip(hub.urgent_latencies, hub.urgent_until_sent, strict=True)
        )
        for name in ("p50", "p99", "max"):
            rows.append((f"  until the worker sent it, {name}", _ms(until_sent, name), ""))
        for name in ("p50", "p99", "max"):
            rows.append((f"  from then until read, {name}", _ms(after_sent, name), ""))
        rows.append(
            ("ordinary latency p99, ms (queued before start)", _ms(summarise(hub.latencies), "p99"), "")
        )
    else:
        bare = report.bare
        bare_ms = summarise(bare.latencies) if bare else None
        rows += [
            ("throughput, events/s", f"{hub.eps:,.0f}", f"{bare.eps:,.0f}" if bare else ""),
            (
                "first publish to last result, s",
                f"{hub.seconds:,.2f}",
                f"{bare.seconds:,.2f}" if bare else "",
            ),
            (
                "publishing took, s",
                f"{hub.publish_seconds:,.2f}",
                f"{bare.publish_seconds:,.2f}" if bare else "",
            ),
            ("results (notifications / messages)", f"{hub.results:,}", f"{bare.results:,}" if bare else ""),
        ]
        for name in ("p50", "p95", "p99", "max"):
            rows.append((f"latency {name}, ms", _ms(all_ms, name), _ms(bare_ms, name) if bare else ""))
        if options.mode is Mode.RATE:
            # As in backlog mode: the hub's part, and the broker's and the bench reader's after it.
            until_sent = summarise(hub.until_sent + hub.urgent_until_sent)
            for name in ("p50", "p99"):
                rows.append((f"  until the worker sent it, {name}", _ms(until_sent, name), ""))
        if urgent_ms:
            rows.append(("urgent latency p99, ms", _ms(urgent_ms, "p99"), ""))
        if options.mode is Mode.RATE:
            rows.append(("offered, events/s", f"{options.rate:,.0f}", ""))
    per_event_us = report.worker_cpu_seconds / max(report.events, 1) * 1e6
    if report.batches:
        rows.append(
            (
                "batches applied (mean events each)",
                f"{report.batches:,.0f} ({report.events / report.batches:,.0f})",
                "",
            )
        )
        rows.append(("time applying batches, s", f"{report.batch_seconds:,.1f}", ""))
    rows += [
        ("worker CPU per event, us", f"{per_event_us:,.0f}" if report.worker_cpu_seconds else "-", ""),
        ("  of which signature check, us", f"{report.verify_us:,.0f}" if report.verify_us else "-", ""),
        ("  sealing one record, us", f"{report.seal_us:,.1f}" if report.seal_us else "-", ""),
        ("peak RSS, MB", f"{report.worker_rss_mb:,.0f}", f"{report.bare_rss_mb:,.0f}" if report.bare else ""),
    ]
    width = max(len(name) for name, _, _ in rows) + 2
    lines.append("")
    lines.append(
        f"{'':{width}}{'hub worker':>14}{'bare loop' if options.mode is Mode.THROUGHPUT else '':>14}"
    )
    lines += [f"{name:{width}}{hub_value:>14}{bare_value:>14}" for name, hub_value, bare_value in rows]
    if not hub.complete:
        lines.append("INCOMPLETE: the worker did not consume every event before the time limit")
    lines.append("")
    if options.mode is Mode.THROUGHPUT:
        bare_eps = report.bare.eps if report.bare else 0.0
        lines.append(last_line(hub.eps, bare_eps, all_ms.p99 if all_ms else 0.0, report.worker_rss_mb))
    elif options.mode is Mode.RATE:
        lines.append(
            f"offered_eps={round(options.rate)} p50_ms={round(all_ms.p50) if all_ms else 0} "
            f"p95_ms={round(all_ms.p95) if all_ms else 0} p99_ms={round(all_ms.p99) if all_ms else 0} "
            f"rss_mb={round(report.worker_rss_mb)}"
        )
    else:
        lines.append(
            f"backlog={report.backlog_events} "
            f"drain_eps={round(report.backlog_events / max(report.backlog_drain_seconds, 1e-9))} "
            f"urgent_p99_ms={round(urgent_ms.p99) if urgent_ms else 0} rss_mb={round(report.worker_rss_mb)}"
        )
    return lines


# ---- the command -------------------------------------------------------------------------------------------------


def bench_command(
    cases: Annotated[
        int | None, typer.Option(help="Cases in the store (default 10,000; 1,000 with --quick).")
    ] = None,
    events: Annotated[
        int | None,
        typer.Option(help="Events to publish in throughput mode (default 20,000; 4,000 with --quick)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A small run (under a minute) with the same measurements.")
    ] = False,
    mode: Annotated[
        Mode, typer.Option(help="throughput, rate (offered load) or backlog (urgent while draining).")
    ] = (Mode.THROUGHPUT),
    rate: Annotated[float, typer.Option(help="Events per second offered in rate mode.")] = 1000.0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of offered load in rate mode (default 30).")
    ] = None,
    backlog: Annotated[
        int | None, typer.Option(help="Ordinary events queued in backlog mode (default 200,000).")
    ] = None,
    urgent_rate: Annotated[
        float, typer.Option(help="Urgent events per second while a backlog drains.")
    ] = 5.0,
    database: Annotated[
        DatabaseKind, typer.Option(help="sqlite (temporary file) or postgresql (scratch database).")
    ] = (DatabaseKind.SQLITE),
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic.")] = 1,
    keep: Annotated[
        bool, typer.Option(help="Keep the working directory (logs, database) for a look afterwards.")
    ] = False,
    store_cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep each loaded SQLite case store in this directory and copy it on later runs with the same "
            "--cases and --seed on the same day, instead of loading it again."
        ),
    ] = None,
) -> None:
    """Measure the hub end to end on its own broker and database: throughput, latency, memory."""
    defaults: _Sizes = QUICK if quick else {}
    options = BenchOptions(
        mode=mode,
        cases=cases if cases is not None else defaults.get("cases", BenchOptions.cases),
        events=events if events is not None else defaults.get("events", BenchOptions.events),
        rate=rate,
        duration=duration if duration is not None else defaults.get("duration", BenchOptions.duration),
        backlog=backlog if backlog is not None else defaults.get("backlog", BenchOptions.backlog),
        urgent_rate=urgent_rate,
        database=database,
        seed=seed,
        keep=keep,
        store_cache=store_cache,
    )
    if options.cases < 1 or options.events < 1 or options.rate <= 0 or options.urgent_rate <= 0:
        raise typer.BadParameter("--cases, --events, --rate and --urgent-rate must be positive")
    if store_cache is not None and database is not DatabaseKind.SQLITE:
        raise typer.BadParameter("--store-cache keeps SQLite stores only")
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        report = BenchRun(options, workdir).run()
    except Exception as error:
        say(f"failed: {type(error).__name__}: {error}")
        raise typer.Exit(1) from None
    finally:
        if keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in render(report):
        typer.echo(line)
    if report.hub is None or not report.hub.complete:
        raise typer.Exit(1)


# ---- the bare loop (its own process) -----------------------------------------------------------------------------


async def bare_loop(
    address: str,
    output: str,
    fetch_wait_ms: int,
    topics: list[str],
    *,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Consume the inbound copies and produce each message to one output topic, waiting for the broker's
    acknowledgement once per fetched batch, as the worker does: the most a Python Kafka client does here.

    It asks the broker to hold a fetch as long as the worker's ordinary lane does (`HUB_FETCH_WAIT_MS`). Until
    2026-12-06 it asked for 1.5 s, which faust's driver set before the hub set its own wait (hub/prompt_fetch.py):
    Tansu holds a fetch for most of its wait, so the loop spent most of its run waiting and reported about 8,500
    events/s where it does 19,600-24,200 with the worker's 50 ms (measured on the same machine, 2026-12-06)."""
    import signal

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=address,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,  # the worker's: the same fetch behaviour
        **(client_options or {}),
    )
    producer = AIOKafkaProducer(bootstrap_servers=address, acks="all", linger_ms=0, **(client_options or {}))
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        print("ready", flush=True)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            futures = [
                await producer.send(output, record.value, key=record.key, headers=list(record.headers))
                for records in batch.values()
                for record in records
            ]
            if futures:
                await asyncio.gather(*futures)
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(
        bare_loop(
            sys.argv[1],
            sys.argv[2],
            int(sys.argv[3]),
            sys.argv[4:],
            client_options=Settings().kafka_client_options(),
        )
    )
