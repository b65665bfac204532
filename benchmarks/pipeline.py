"""The pipeline alone (no broker): CPU per event of each step of applying a chunk, on case stores of two sizes
measured in the same run.

The steps are those of `hub.pipeline.batch`: ingest (decode and the contract rules), load (`hub.store.load`), decide
(`hub.pipeline.handlers`, notifications built included), write (`hub.store.write`) and the rest (the transaction,
its commit, marking what the broker acknowledged). The same realistic chunks of 100 events go to each store, the
stores taking turns chunk by chunk so other processes on the machine weigh on both alike. Figures are CPU
microseconds per event of the applying thread. The last line compares the larger store with the smaller.

    .venv/bin/python benchmarks/pipeline.py [--cases 10000,1000000] [--events 10000] [--store-cache DIR]

Loading a store of a million cases takes minutes; `--store-cache` keeps it for later runs on the same day (as
`hub bench --store-cache`).
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hub.pipeline.batch as batch
from connectors.keys import KeysDirectory
from connectors.signatures import signers_for
from hub.messages import InboundMessage
from hub.pipeline.handlers import EventHandlers
from hub.pipeline.notify import NotificationFactory
from hub.runtime.worker import settle_garbage_collector
from hub.settings import AGENCY_SOURCES
from hub.store.load import StoreLoader
from hub.tools.bench.events import prepare, realistic_mix
from hub.tools.bench.options import BENCH_PREFIX
from hub.tools.bench_ab import STORE_CACHE, _pipeline
from hub.tools.traffic import Traffic

STEPS = ("ingest", "load", "decide", "write")
CHUNK = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="10000,1000000", help="store sizes, comma-separated")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-cache", type=Path, default=STORE_CACHE)
    options = parser.parse_args()
    sizes = [int(size) for size in options.cases.split(",")]
    spent: dict[int, Counter[str]] = {size: Counter() for size in sizes}
    total: Counter[int] = Counter()
    current: list[int] = [sizes[0]]

    def measured(step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[current[0]][step] += time.thread_time() - started

        return timed

    batch.Pipeline.ingest_all = measured("ingest", batch.Pipeline.ingest_all)  # type: ignore[method-assign]
    StoreLoader.load = measured("load", StoreLoader.load)  # type: ignore[method-assign]
    EventHandlers.apply = measured("decide", EventHandlers.apply)  # type: ignore[method-assign]
    batch.write = measured("write", batch.write)
    NotificationFactory.build = measured("  of which notifications built", NotificationFactory.build)  # type: ignore[method-assign]

    traffic = Traffic(seed=options.seed, today=datetime.now(UTC).date(), first_case=0)
    with tempfile.TemporaryDirectory() as scratch:
        pipelines = {}
        for size in sizes:
            (Path(scratch) / str(size)).mkdir()
            pipelines[size] = _pipeline(
                Path(scratch) / str(size), traffic, size, options.seed, options.store_cache
            )
        keys = KeysDirectory(Path(scratch) / "keys")
        keys.create_missing(list(AGENCY_SOURCES), [])
        signers = signers_for(keys, list(AGENCY_SOURCES))
        # Events about the cases every store holds, so each store applies the same work.
        mix = realistic_mix(traffic, min(sizes), options.events, random.Random(options.seed))
        messages = [
            InboundMessage(BENCH_PREFIX + event.topic, 0, offset, None, event.key, event.value)
            for offset, event in enumerate(prepare(mix, signers))
        ]
        settle_garbage_collector()
        for number, start in enumerate(range(0, len(messages), CHUNK)):
            for size in sizes if number % 2 == 0 else reversed(sizes):
                current[0] = size
                gc.collect()
                started = time.thread_time()
                result = pipelines[size].process(messages[start : start + CHUNK])
                pipelines[size].published(
                    [n.notification_id for n in result.notifications], datetime.now(UTC)
                )
                total[size] += time.thread_time() - started
        for pipeline in pipelines.values():
            pipeline.engine.dispose()
    events = len(messages)
    print(f"{'CPU per event, us':<34}" + "".join(f"{f'{size:,} cases':>16}" for size in sizes))
    for step in (*STEPS, "  of which notifications built"):
        print(f"{step:<34}" + "".join(f"{spent[size][step] / events * 1e6:>16,.0f}" for size in sizes))
    print(
        f"{'the rest (transaction, commit)':<34}"
        + "".join(
            f"{(total[size] - sum(spent[size][s] for s in STEPS)) / events * 1e6:>16,.0f}" for size in sizes
        )
    )
    print(f"{'total':<34}" + "".join(f"{total[size] / events * 1e6:>16,.0f}" for size in sizes))
    if len(sizes) > 1:
        print(f"larger_over_smaller={total[sizes[-1]] / total[sizes[0]]:.3f}")


if __name__ == "__main__":
    main()
