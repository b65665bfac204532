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
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
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
from hub.tools.bench.report import Report
from hub.tools.bench.store import (
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
        from hub.runtime.processes import free_port

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
        from hub.reference import load_units
        from hub.runtime.broker import EmbeddedBroker
        from hub.runtime.processes import stop
        from hub.store.engine import make_engine

        options = self.options
        traffic = Traffic(seed=options.seed, today=datetime.now(UTC).date(), first_case=0)
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
