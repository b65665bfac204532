"""One bench run: the broker, the case store, the keys and the worker it measures, and the mode asked for:

- `throughput` (default): publish every event as fast as possible; the hub, then the bare loop.
- `rate`: offer `--rate` events per second for `--duration` seconds; latency percentiles.
- `backlog`: publish a backlog of ordinary events before the worker starts, then, while it drains, publish
  urgent events at `--urgent-rate` per second; urgent latency is reported on its own, and split at the
  notification's record timestamp (set by the worker's producer as it takes the notification) into the time
  until the worker sent it and the time from then until the bench read it.

Latency is per notification: the time the bench consumed it from its `vlo.<unit>` queue minus the time the
bench handed its source event to the producer (the notification's `source_event_ids` name the event). The
throughput is events / (first publish to last notification consumed). In the same run the same messages go
through a bare aiokafka consume-and-produce loop (its own process, its own copy of the topics) timed the
same way; the ratio of the two says how much of the broker's speed the hub keeps.

With `--workers N` (throughput mode, PostgreSQL), between the two the same events go through N workers in one
consumer group, from an equal starting store (`_group`), and the store is asked whether each was applied once.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.settings import AGENCY_SOURCES, Settings
from hub.tools.bench.events import PreparedEvent, inbound_topics, prepare, realistic_mix, split_by_urgency
from hub.tools.bench.measuring import (
    GroupProgress,
    Outcome,
    Publisher,
    QueueWatcher,
    bare_latencies,
    measured,
    notification_latencies,
    wait_until_done,
)
from hub.tools.bench.options import BARE_OUTPUT, BARE_PREFIX, BENCH_PREFIX, BenchOptions, DatabaseKind, Mode
from hub.tools.bench.processes import (
    cpu_seconds,
    rss_peak_mb,
    scrape_batches,
    start_worker,
    wait_for_line,
    wait_healthy,
)
from hub.tools.bench.progress import say
from hub.tools.bench.report import GroupReport, Report, WorkerFigures
from hub.tools.bench.store import (
    applied_among,
    cached_store,
    create_database,
    drop_database,
    load_cases,
    load_or_copy,
    share_data_keys,
)
from hub.tools.traffic import Traffic

if TYPE_CHECKING:
    import subprocess

    from routing.units import UnitDirectory

# Events whose signature check and sealing are timed alone, for the report.
PROTECTION_SAMPLE = 5000
# How long the workers of a group get to share the inbound partitions out after the last is healthy; the
# measurement starts anyway after that (a rebalance during it shows in its throughput).
GROUP_SETTLE_SECONDS = 60.0
# What a worker's ordinary lane logs when it takes its share of the inbound partitions (hub/runtime/lanes.py).
READING_PARTITIONS = re.compile(r"ordinary lane: reading partitions \[([\d, ]*)\]")


def web_of(env: dict[str, str]) -> str:
    """A worker's web address (/health, /metrics), from the environment it was started with."""
    return f"http://127.0.0.1:{env['HUB_WEB_PORT']}"


def partitions_read(log: Path) -> set[int] | None:
    """The partitions a worker's ordinary lane took last, from its log; None before it took any."""
    found = READING_PARTITIONS.findall(log.read_text(errors="replace")) if log.exists() else []
    if not found:
        return None
    return {int(number) for number in found[-1].split(",") if number.strip()}


def shared_out(read: Sequence[set[int] | None], partitions: int) -> bool:
    """Whether the workers read every partition, each by one worker, and each worker some (while there are
    partitions enough to go round)."""
    taken = [numbers for numbers in read if numbers]
    if len(taken) < min(len(read), partitions):
        return False
    every = set().union(*taken)
    return every == set(range(partitions)) and sum(len(numbers) for numbers in taken) == len(every)


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
        self.scratch_databases: list[str] = []  # PostgreSQL databases to drop afterwards

    # set-up
    def _worker_env(self, address: str, database_url: str, data_dir: str = "hub") -> dict[str, str]:
        from hub.runtime.processes import free_port

        return {
            "HUB_BROKER": address,
            "HUB_DATABASE_URL": database_url,
            "HUB_DATA_DIR": str(self.workdir / data_dir),
            "HUB_TOPIC_PREFIX": BENCH_PREFIX,
            "HUB_APP_ID": self.settings.app_id,
            "HUB_WEB_PORT": str(free_port()),
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
        from hub.reference import load_units
        from hub.runtime.broker import EmbeddedBroker
        from hub.runtime.processes import stop
        from hub.store.engine import make_engine

        options = self.options
        traffic = Traffic(seed=options.seed, today=datetime.now(UTC).date(), first_case=0)
        rng = random.Random(options.seed)
        units = load_units(self.settings)
        self._keys([unit.code for unit in units.units])
        self.broker = EmbeddedBroker(self.workdir / "broker.log")
        try:
            address = self._start_broker()
            database_url = self._scratch_database()
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
                self._hub(env, events)
                if options.mode is Mode.THROUGHPUT and options.workers > 1:
                    address = self._group(units, events)
                if options.mode is Mode.THROUGHPUT:
                    self._bare(address, events)
        finally:
            for process in reversed(self.processes):
                stop(process, 10)
            self.broker.stop()
            for name in self.scratch_databases:
                drop_database(name)
        return self.report

    def _start_broker(self) -> str:
        address = self.broker.start()
        say(f"broker on {address} (pid {self.broker.process.pid if self.broker.process else '?'})")
        return address

    def _scratch_database(self) -> str:
        """A new empty store for the run (migrated by the first engine on it); its URL."""
        database_url, scratch = create_database(self.options.database, self.workdir)
        if scratch:
            self.scratch_databases.append(scratch)
        return database_url

    async def _topics(self, address: str, units: UnitDirectory) -> None:
        from hub.runtime.topics import ensure_topics, hub_topics

        names = hub_topics(self.settings, [unit.code for unit in units.units])
        names += [*inbound_topics(BARE_PREFIX), BARE_OUTPUT]
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
        from hub.runtime.lanes import ordinary_group, urgent_group

        app_id = self.settings.app_id
        return [app_id, ordinary_group(app_id), urgent_group(app_id)]

    def _start_worker(self, env: dict[str, str], log_name: str = "worker.log") -> subprocess.Popen[bytes]:
        log = self.workdir / log_name
        worker = start_worker(env, log)
        self.processes.append(worker)
        say(f"worker pid {worker.pid} starting (log {log})")
        return worker

    def _stop(self, processes: Sequence[subprocess.Popen[bytes]]) -> None:
        from hub.runtime.processes import stop

        for process in processes:
            stop(process, 10)
            self.processes.remove(process)

    def _hub(self, env: dict[str, str], events: Sequence[PreparedEvent]) -> None:
        worker = self._start_worker(env)
        wait_healthy(f"{web_of(env)}/health", worker, self.workdir / "worker.log")
        say("worker consuming; publishing")
        self.report.hub, [self.report.worker_cpu_seconds] = self._measure(env["HUB_BROKER"], [worker], events)
        self.report.worker_rss_mb = rss_peak_mb(worker.pid)
        self.report.batches, self.report.batch_seconds = scrape_batches(web_of(env))
        say(
            f"hub: {self.report.hub.results:,} notifications, {self.report.hub.eps:,.0f} events/s"
            + ("" if self.report.hub.complete else " (INCOMPLETE: timed out)")
        )

    def _measure(
        self, address: str, workers: Sequence[subprocess.Popen[bytes]], events: Sequence[PreparedEvent]
    ) -> tuple[Outcome, list[float]]:
        """Publish the events to running workers and read the unit queues until their groups have committed
        everything: the outcome, and the CPU seconds each worker used meanwhile."""
        timeout = 120 + len(events) / 100
        cpu: list[float] = []

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
                cpu_before = [cpu_seconds(worker.pid) for worker in workers]
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
                cpu.extend(
                    cpu_seconds(worker.pid) - before
                    for worker, before in zip(workers, cpu_before, strict=True)
                )
            times = notification_latencies(watcher.arrivals, publisher, self.opener)
            return times.outcome(len(events), first, complete, publish_seconds)

        return asyncio.run(measured(measure)), cpu

    def _group(self, units: UnitDirectory, events: Sequence[PreparedEvent]) -> str:
        """The same events through `--workers` workers in one consumer group (one app id, each worker its own web
        port and data directory), from an equal starting store. Returns the broker's new address.

        The one-worker measurement is left behind whole: its worker and broker are stopped, and the group gets a
        fresh broker and a fresh scratch database loaded with the same cases. Not a second topic prefix on the
        same broker: each event's signature covers its topic's name, so the prepared events (the very bytes
        the one worker had) are valid under the first prefix only; and an empty broker, as the first one was
        when its measurement began, holds neither the first run's messages nor its consumer groups, so the
        group starts where the one worker started."""
        from hub.runtime.broker import EmbeddedBroker
        from hub.store.engine import make_engine

        options = self.options
        self._stop(list(self.processes))
        self.broker.stop()
        self.broker = EmbeddedBroker(self.workdir / "broker-group.log")
        address = self._start_broker()
        database_url = self._scratch_database()
        say(f"loading the same {options.cases:,} cases again for {options.workers} workers")
        engine = make_engine(database_url, self.data_keys)
        try:
            # A traffic generator of its own: the first has followed cases up since, and must not change them.
            traffic = Traffic(seed=options.seed, today=datetime.now(UTC).date(), first_case=0)
            load_cases(engine, units, traffic, options.cases)
        finally:
            engine.dispose()
        asyncio.run(self._topics(address, units))
        envs = [
            self._worker_env(address, database_url, f"hub-{number}")
            for number in range(1, options.workers + 1)
        ]
        logs = [f"worker-{number}.log" for number in range(1, options.workers + 1)]
        workers = [self._start_worker(env, log) for env, log in zip(envs, logs, strict=True)]
        for env, worker, log in zip(envs, workers, logs, strict=True):
            wait_healthy(f"{web_of(env)}/health", worker, self.workdir / log)
        self._settle([self.workdir / log for log in logs])
        say(f"{options.workers} workers consuming; publishing the same events")
        since = datetime.now(UTC) - timedelta(minutes=1)  # the loaded history is days older
        outcome, cpu = self._measure(address, workers, events)
        figures = [
            WorkerFigures(worker.pid, seconds, scrape_batches(web_of(env))[0], rss_peak_mb(worker.pid))
            for worker, env, seconds in zip(workers, envs, cpu, strict=True)
        ]
        # The bare loop runs next, without them, as it would have had the one worker's broker to itself.
        self._stop(workers)
        applied = applied_among(database_url, [event.event_id for event in events], since)
        self.report.group = GroupReport(outcome, figures, applied)
        say(
            f"{options.workers} workers: {outcome.results:,} notifications, {outcome.eps:,.0f} events/s, "
            f"{applied:,} of {len(events):,} events applied, {outcome.duplicates:,} duplicate notifications"
            + ("" if outcome.complete else " (INCOMPLETE: timed out)")
        )
        return address

    def _settle(self, logs: Sequence[Path]) -> None:
        """Wait until the group has shared the inbound partitions out, each worker's ordinary lane reading its
        own, so that the measurement does not begin in the rebalance the last worker to join set off."""
        deadline = time.monotonic() + GROUP_SETTLE_SECONDS
        while time.monotonic() < deadline:
            read = [partitions_read(log) for log in logs]
            if shared_out(read, self.settings.topic_partitions):
                say(f"partitions shared out: {'; '.join(str(sorted(numbers or ())) for numbers in read)}")
                return
            time.sleep(0.2)
        say(
            f"the workers had not shared the partitions out after {GROUP_SETTLE_SECONDS:.0f}s; measuring anyway"
        )

    def _bare(self, address: str, events: Sequence[PreparedEvent]) -> None:
        from hub.runtime.processes import spawn

        log = self.workdir / "bare.log"
        topics = inbound_topics(BARE_PREFIX)
        bare = spawn(
            [
                sys.executable,
                "-m",
                "hub.tools.bench.bare_loop",
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
                    f"{web_of(env)}/health",
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
