"""Compare two variants of the pipeline in one process, where a few per cent can be told from noise.

End-to-end runs of `hub bench` on a shared machine vary between like runs by more than most single changes to
the pipeline. Here the pipeline alone (no broker) applies the same realistic chunks to two copies of one loaded
case store, one per variant, alternating which goes first, and counts only the CPU time of the thread applying
them, so identical variants come out close together.

Each timed chunk starts from a fresh cycle collection: otherwise the variant that goes second pays for the
other's garbage, and identical variants come out far apart. So the figures leave out collection costs: measure
those end to end.

A variant module defines `use(variant)`, called with "A" or "B" before each chunk, which switches whatever is
compared (a module constant, a method):

    # /tmp/step.py
    import hub.pipeline.batch
    def use(variant: str) -> None:
        hub.pipeline.batch.LOAD_STEP = 50 if variant == "A" else 100

    PYTHONPATH=/tmp .venv/bin/python -m hub.tools.bench_ab step --store-cache ~/.cache/hub-bench
"""

from __future__ import annotations

import gc
import importlib
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from connectors.avro import hub_codec
from connectors.keys import KeysDirectory
from connectors.signatures import signers_for
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.runtime.worker import settle_garbage_collector
from hub.settings import AGENCY_SOURCES, Settings
from hub.store.engine import make_engine
from hub.tools.bench.events import prepare, realistic_mix
from hub.tools.bench.options import BENCH_PREFIX
from hub.tools.bench.progress import say
from hub.tools.bench.store import cached_store, load_or_copy, share_data_keys
from hub.tools.traffic import Traffic

VARIANTS = ("A", "B")
# Where loaded stores are kept between runs (`hub bench --store-cache`): loading 10,000 cases takes a while.
STORE_CACHE = Path(tempfile.gettempdir()) / "hub-bench-stores"


def _pipeline(directory: Path, traffic: Traffic, cases: int, seed: int, store_cache: Path) -> Pipeline:
    settings = Settings(
        topic_prefix=BENCH_PREFIX, database_url=f"sqlite:///{directory / 'hub.db'}", broker=""
    )
    units = load_units(settings)
    kept = cached_store(store_cache, cases, seed, traffic.today)
    data_keys = share_data_keys(directory / "keys", store_cache)
    load_or_copy(make_engine(settings.database_url, data_keys), units, traffic, cases, kept)
    return Pipeline(settings, make_engine(settings.database_url, data_keys), hub_codec(), units)


def compare(
    variant_module: Annotated[str, typer.Argument(help="A module defining use(variant), on PYTHONPATH.")],
    cases: int = 10_000,
    events: int = 20_000,
    chunk: int = 100,
    seed: int = 1,
    store_cache: Path = STORE_CACHE,
) -> None:
    """Apply the same chunks with variants A and B, alternately, and print the CPU each took per event."""
    variant = importlib.import_module(variant_module)
    traffic = Traffic(seed=seed, today=datetime.now(UTC).date(), first_case=0)
    with tempfile.TemporaryDirectory() as scratch:
        pipelines = {}
        for name in VARIANTS:
            (Path(scratch) / name).mkdir()
            pipelines[name] = _pipeline(Path(scratch) / name, traffic, cases, seed, store_cache)
        # The pipeline alone: signatures are checked before it (hub/runtime/protection.py), so any signer will do.
        keys = KeysDirectory(Path(scratch) / "keys")
        keys.create_missing(list(AGENCY_SOURCES), [])
        signers = signers_for(keys, list(AGENCY_SOURCES))
        prepared = prepare(realistic_mix(traffic, cases, events, random.Random(seed)), signers)
        messages = [
            InboundMessage(BENCH_PREFIX + event.topic, 0, offset, None, event.key, event.value)
            for offset, event in enumerate(prepared)
        ]
        say(f"applying {len(messages):,} events in chunks of {chunk}, alternately with A and B")
        settle_garbage_collector()  # as the worker does
        cpu = dict.fromkeys(VARIANTS, 0.0)
        notifications = dict.fromkeys(VARIANTS, 0)
        for number, start in enumerate(range(0, len(messages), chunk)):
            for name in VARIANTS if number % 2 == 0 else reversed(VARIANTS):
                variant.use(name)
                gc.collect()
                started = time.thread_time()
                result = pipelines[name].process(messages[start : start + chunk])
                pipelines[name].published(
                    [n.notification_id for n in result.notifications], datetime.now(UTC)
                )
                cpu[name] += time.thread_time() - started
                notifications[name] += len(result.notifications)
        for pipeline in pipelines.values():
            pipeline.engine.dispose()
    for name in VARIANTS:
        per_event_us = cpu[name] / len(messages) * 1e6
        print(f"{name}: pipeline CPU per event {per_event_us:,.0f} us, {notifications[name]:,} notifications")
    print(f"B/A={cpu['B'] / cpu['A']:.3f}")


if __name__ == "__main__":
    typer.run(compare)
