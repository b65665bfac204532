"""`hub simulate`: realistic agency traffic at a steady rate, with a progress display and a summary.

Events come from `hub.tools.traffic.Traffic` and go out through the agency publisher (the same validation,
encoding, keys and schema-registry framing as `hub publish`), a batch per topic each tick, paced so that the
running total follows the requested rate. Invalid events (`--invalid-share`) are encoded without the
publisher's rules so that they reach the hub and are dead-lettered there, as an agency's broken event would.
`hub up --demo` runs the same loop in a background thread, gently, until the hub stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from connectors.keys import KeyFileError
from hub.errors import BrokerUnreachable
from hub.settings import AGENCY_SOURCES, Settings

if TYPE_CHECKING:
    from connectors.publisher import AgencyPublisher
    from hub.tools.traffic import SimulatedEvent, Traffic

CONNECT_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
# How often the pacing loop wakes: at most this long between sends, and no busier than the shortest tick.
LONGEST_TICK_SECONDS = 0.2
SHORTEST_TICK_SECONDS = 0.01
MIN_CATCH_UP_BATCH = 100
CASES_PER_SEED = 10_000  # each seed opens its cases in its own range, so runs with fresh seeds never collide
DEMO_RATE = 2.0
DEMO_INVALID_SHARE = 0.01


@dataclass
class Tally:
    """What a run sent, for the progress display and the summary."""

    rate: float  # asked for, events per second
    seed: int
    first_case: int
    sent: Counter[str] = field(default_factory=Counter)  # confirmed by the broker, by source
    urgent: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # events not confirmed, by error class
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def elapsed(self) -> float:
        return max((self.finished or time.monotonic()) - self.started, 1e-9) if self.started else 0.0

    @property
    def achieved_rate(self) -> float:
        return self.total / self.elapsed if self.started else 0.0


def fresh_seed() -> int:
    return random.SystemRandom().randrange(1, 1_000_000)


def first_case_for(seed: int) -> int:
    return (seed % 1000) * CASES_PER_SEED


async def send_traffic(
    address: str,
    settings: Settings,
    traffic: Traffic,
    tally: Tally,
    duration: float | None,
    stopping: Callable[[], bool],
    on_progress: Callable[[Tally], None] | None = None,
) -> Tally:
    """Publish `traffic` at `tally.rate` events per second for `duration` seconds (None: until `stopping()`).

    Raises BrokerUnreachable when the broker cannot be reached at the start; later send failures are counted
    in `tally.errors` and the run goes on."""
    from aiokafka.errors import KafkaError

    from connectors.keys import KeysDirectory
    from connectors.publisher import AgencyPublisher
    from connectors.signatures import signers_for
    from hub.runtime.protection import embedded_keys
    from hub.runtime.topics import ensure_topics, retention_of

    topics = [
        topic
        for source in AGENCY_SOURCES
        for topic in (settings.inbound_topic(source), settings.urgent_topic(source))
    ]
    embedded_keys(settings)
    keys = KeysDirectory(settings.resolved_keys_dir)
    signers = signers_for(keys, list(AGENCY_SOURCES))
    if unsigned := [source for source in AGENCY_SOURCES if source not in signers]:
        raise KeyFileError(
            f"no signing key for {', '.join(unsigned)} in {keys.root}: simulated traffic is signed as each "
            "agency's (`hub up` makes demo keys; or `hub keys new --agency NAME`)"
        )
    client_options = settings.kafka_client_options()
    publisher = AgencyPublisher(
        address,
        signers=signers,
        registry_url=settings.schema_registry_url,
        client_options=client_options,
    )
    try:
        await asyncio.wait_for(
            ensure_topics(
                address,
                topics,
                settings.topic_partitions,
                settings.topic_replication,
                client_options=client_options,
                retention=retention_of(settings),
            ),
            CONNECT_TIMEOUT_SECONDS,
        )
        await asyncio.wait_for(publisher.__aenter__(), CONNECT_TIMEOUT_SECONDS)
    except (KafkaError, OSError, TimeoutError) as error:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(publisher.__aexit__(), STOP_TIMEOUT_SECONDS)
        raise BrokerUnreachable(f"cannot reach the broker at {address} ({type(error).__name__})") from None
    try:
        await _paced(publisher, settings, traffic, tally, duration, stopping, on_progress)
    except asyncio.CancelledError:  # a second Ctrl-C: stop at once
        tally.interrupted = True
    finally:
        tally.finished = time.monotonic()
        with contextlib.suppress(Exception):  # a broker gone away must not hang the summary
            await asyncio.wait_for(publisher.__aexit__(), STOP_TIMEOUT_SECONDS)
    return tally


async def _paced(
    publisher: AgencyPublisher,
    settings: Settings,
    traffic: Traffic,
    tally: Tally,
    duration: float | None,
    stopping: Callable[[], bool],
    on_progress: Callable[[Tally], None] | None,
) -> None:
    rate = tally.rate
    wanted = None if duration is None else max(round(rate * duration), 0)
    stream = iter(traffic)
    taken = 0
    tally.started = time.monotonic()
    while wanted is None or taken < wanted:
        if stopping():
            tally.interrupted = True
            break
        # The running total follows rate x elapsed; the first event goes at once.
        due = int(rate * (time.monotonic() - tally.started)) + 1
        if wanted is not None:
            due = min(due, wanted)
        if due > taken:
            # Behind (a slow broker, a busy machine): catch up in bounded batches, so Ctrl-C is still heard.
            count = min(due - taken, max(MIN_CATCH_UP_BATCH, int(rate * LONGEST_TICK_SECONDS)))
            batch = [next(stream) for _ in range(count)]
            taken += count
            await _send(publisher, settings, batch, tally)
            if on_progress is not None:
                on_progress(tally)
        next_due = tally.started + taken / rate
        await asyncio.sleep(
            min(LONGEST_TICK_SECONDS, max(SHORTEST_TICK_SECONDS, next_due - time.monotonic()))
        )


async def _send(
    publisher: AgencyPublisher, settings: Settings, batch: list[SimulatedEvent], tally: Tally
) -> None:
    """One batch per topic (events topic or urgent lane), all at once; counts what the broker confirmed."""
    from datetime import UTC, datetime

    from connectors.publisher import event_from_json
    from schemas.validation import InvalidEvent

    now = datetime.now(UTC)
    by_lane: dict[str, list[tuple[SimulatedEvent, bool]]] = {}
    records: dict[str, list] = {}
    for simulated in batch:
        try:
            record, valid = event_from_json(simulated.fields, simulated.source, now), True
        except InvalidEvent:
            try:
                record, valid = (
                    event_from_json(simulated.fields, simulated.source, now, validate=False),
                    False,
                )
            except InvalidEvent:  # broken beyond what Avro can carry: nothing to send
                tally.errors["InvalidEvent"] += 1
                continue
        # Urgent event types travel on their source's urgent lane, as an agency's publisher sends them.
        lane = settings.topic_for(simulated.source, record.envelope.event_type)
        by_lane.setdefault(lane, []).append((simulated, valid))
        records.setdefault(lane, []).append(record)
    lanes = list(records)
    results = await asyncio.gather(
        *(publisher.publish(lane, records[lane]) for lane in lanes),
        return_exceptions=True,
    )
    for lane, result in zip(lanes, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            tally.errors[type(result).__name__] += len(by_lane[lane])
            continue
        for simulated, valid in by_lane[lane]:
            source = simulated.source
            tally.sent[source] += 1
            tally.urgent[source] += simulated.urgent
            tally.invalid[source] += not valid


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def summary_lines(tally: Tally, address: str) -> list[str]:
    """The closing summary: what was sent, by source, and how fast."""
    asked = f"{tally.rate:g}"
    lines = [
        f"simulated {tally.total} event(s) in {tally.elapsed:.2f} s: {tally.achieved_rate:.1f} events/s "
        f"(asked {asked}/s) to {address}"
    ]
    if tally.interrupted:
        lines.append("stopped early (interrupted)")
    lines.append(f"{'source':<14}{'events':>8}{'urgent':>8}{'invalid':>9}")
    for source in AGENCY_SOURCES:
        lines.append(
            f"{source:<14}{tally.sent[source]:>8}{tally.urgent[source]:>8}{tally.invalid[source]:>9}"
        )
    lines.append(
        f"{'total':<14}{tally.total:>8}{sum(tally.urgent.values()):>8}{sum(tally.invalid.values()):>9}"
    )
    kinds = ", ".join(f"{name} {count}" for name, count in tally.errors.most_common())
    lines.append(f"errors {tally.failed}" + (f" ({kinds})" if kinds else ""))
    if tally.total and not tally.interrupted and tally.achieved_rate < 0.9 * tally.rate:
        lines.append(
            "behind the asked rate: every event is validated and encoded here (CPU-bound), "
            "and the broker and workers share this machine"
        )
    lines.append(
        f"seed {tally.seed}, cases from {tally.first_case} "
        f"(repeat with --seed {tally.seed} --first-case {tally.first_case})"
    )
    return lines


def simulate_command(
    rate: Annotated[float, typer.Option(help="Events per second, across every source.", min=0.01)],
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (rate x duration events); until Ctrl-C if omitted.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Repeat a run's events (default: a fresh seed, printed at the end).")
    ] = None,
    invalid_share: Annotated[
        float,
        typer.Option(
            help="Share of invalid events, which the hub dead-letters (0 to 0.99).", min=0, max=0.99
        ),
    ] = 0.0,
    first_case: Annotated[
        int | None, typer.Option(help="Number of the first simulated case (default: from the seed).", min=0)
    ] = None,
) -> None:
    """Publish realistic simulated traffic from every agency, in realistic proportions, at a steady rate."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hub.tools.traffic import CASE_NUMBERS, Traffic

    # aiokafka logs every failed connection; the command reports them itself, once, in plain words.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = Settings()
    try:
        address = settings.resolved_broker()
    except RuntimeError as error:
        typer.echo(f"hub: {error}", err=True)
        raise typer.Exit(2) from None
    seed = fresh_seed() if seed is None else seed
    first = first_case_for(seed) if first_case is None else first_case % CASE_NUMBERS
    traffic = Traffic(seed=seed, first_case=first, invalid_share=invalid_share)
    tally = Tally(rate=rate, seed=seed, first_case=first)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        MofNCompleteColumn() if duration is not None else TextColumn("{task.completed} sent"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=True,  # the summary follows and says it all
    )
    task = progress.add_task(
        "simulate", total=None if duration is None else round(rate * duration), detail=""
    )

    def show(current: Tally) -> None:
        detail = (
            f"{current.achieved_rate:.0f}/s  urgent {sum(current.urgent.values())}  "
            f"invalid {sum(current.invalid.values())}  errors {current.failed}"
        )
        progress.update(task, completed=current.total + current.failed, detail=detail)

    async def run() -> Tally:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        main = asyncio.current_task()

        def interrupt() -> None:
            if stop.is_set() and main is not None:
                main.cancel()  # the second Ctrl-C does not wait for a batch stuck on the broker
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupt)
        try:
            return await send_traffic(address, settings, traffic, tally, duration, stop.is_set, show)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    try:
        with progress:
            asyncio.run(run())
    except BrokerUnreachable as error:
        typer.echo(f"hub: {error}; is the hub running (hub up), or HUB_BROKER set?", err=True)
        raise typer.Exit(2) from None
    except KeyFileError as error:
        typer.echo(f"hub: {error}", err=True)
        raise typer.Exit(2) from None
    except asyncio.CancelledError:
        tally.interrupted = True
    for line in summary_lines(tally, address):
        typer.echo(line)
    if tally.failed:
        raise typer.Exit(1)


class BackgroundTraffic:
    """Gentle simulated traffic in a thread of `hub up --demo`, so the operations console has live numbers."""

    def __init__(
        self,
        address: str,
        settings: Settings,
        rate: float = DEMO_RATE,
        invalid_share: float = DEMO_INVALID_SHARE,
        seed: int | None = None,
    ) -> None:
        from hub.tools.traffic import Traffic

        self.address = address
        self.settings = settings
        seed = fresh_seed() if seed is None else seed
        self.traffic = Traffic(seed=seed, first_case=first_case_for(seed), invalid_share=invalid_share)
        self.tally = Tally(rate=rate, seed=seed, first_case=first_case_for(seed))
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> BackgroundTraffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            asyncio.run(
                send_traffic(self.address, self.settings, self.traffic, self.tally, None, self._stop.is_set)
            )
        except Exception as error:  # reported by `stop`; the hub itself keeps running
            self.error = error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sending; waits at most `timeout` seconds (the thread is a daemon: it never holds the exit)."""
        self._stop.set()
        self._thread.join(timeout)


def start_demo_traffic(address: str, settings: Settings, echo: Callable[[str], None]) -> BackgroundTraffic:
    feeder = BackgroundTraffic(address, settings).start()
    echo(
        f"traffic    simulated agency traffic, {feeder.tally.rate:g} events/s "
        f"({feeder.traffic.invalid_share:.0%} invalid), until the hub stops"
    )
    return feeder


def stop_demo_traffic(feeder: BackgroundTraffic | None, echo: Callable[[str], None]) -> None:
    if feeder is None:
        return
    feeder.stop()
    tally = feeder.tally
    if feeder.error is not None:
        echo(f"traffic    failed: {_describe(feeder.error)}")
    echo(
        f"traffic    sent {tally.total} simulated event(s) ({sum(tally.urgent.values())} urgent, "
        f"{sum(tally.invalid.values())} invalid, {tally.failed} not confirmed)"
    )
