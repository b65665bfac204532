"""Ingest's CPU per event: decode plus the contract rules, over the example event of every event type.

Two paths through the same Avro payloads:

- validated: fastavro decodes, pydantic builds and validates the model (`parse_event`), then `check_event`
  walks it. It is the full validation `hub publish` keeps for agencies' JSON.
- hot path: fastavro decodes, then `event_from_record` (what `hub.pipeline.ingest` runs) builds the model without
  validating again and checks the rules compiled for the event type.

Columns are CPU microseconds per event: decode, rules (model construction included) and total (decode and
rules in one loop, as the worker runs them). Each figure is the best of `--repeat` runs, the two paths taking
turns, so other processes on the machine weigh on them alike. The last line is for a script to read.

    .venv/bin/python benchmarks/ingest.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import cycle, islice
from typing import Any

from connectors.avro import AvroCodec, hub_codec
from connectors.publisher import event_from_json
from schemas import SCHEMA_DIR, event_schemas
from schemas.validation import allowed_sources, check_event, event_from_record, parse_event

TARGET_US = 25  # the target for decode plus the contract rules, per event (README, "Performance")


@dataclass(frozen=True)
class Sample:
    event_type: str
    source: str  # the agency whose topic it comes on
    payload: bytes


def example_payloads(codec: AvroCodec, now: datetime) -> list[Sample]:
    """Each event type's example (schemas/<source>/<type>.example.json) as its agency publishes it."""
    samples = []
    for path in sorted(SCHEMA_DIR.glob("*/*.example.json")):
        example = json.loads(path.read_text(encoding="utf-8"))
        schema = event_schemas()[example["event_type"]]
        source = allowed_sources(schema)[0]
        event = event_from_json(example, source, now)
        samples.append(Sample(schema.name, source, codec.encode(schema, event.model_dump())))
    return samples


def validated(event_type: str, record: dict[str, Any], source: str, today: date) -> Any:
    event = parse_event(event_type, record)
    check_event(event, channel=source, today=today)
    return event


def hot_path(event_type: str, record: dict[str, Any], source: str, today: date) -> Any:
    return event_from_record(event_type, record, channel=source, today=today)


Rules = Callable[[str, dict[str, Any], str, date], Any]
PATHS: dict[str, Rules] = {"validated": validated, "hot path": hot_path}


def cpu_us_per_event(run: Callable[[], None], events: int) -> float:
    # What exists before the run (payloads, records decoded for it, the hub's modules) is frozen out of the
    # cycle collector's walks, as the worker freezes what it sets up: the run pays for its own garbage only.
    gc.collect()
    gc.freeze()
    try:
        started = time.process_time_ns()
        run()
        return (time.process_time_ns() - started) / 1000 / events
    finally:
        gc.unfreeze()


def measure(
    codec: AvroCodec, samples: Sequence[Sample], today: date, repeat: int
) -> dict[str, dict[str, float]]:
    """Best-of-`repeat` CPU microseconds per event: {path: {"decode", "rules", "total"}}."""
    events = len(samples)
    best: dict[str, dict[str, float]] = {path: {} for path in PATHS}

    def keep(path: str, stage: str, figure: float) -> None:
        best[path][stage] = min(figure, best[path].get(stage, figure))

    def decode_all() -> None:
        for sample in samples:
            codec.decode(sample.payload)

    for _ in range(repeat):
        decode_us = cpu_us_per_event(decode_all, events)
        for path, rules in PATHS.items():
            keep(path, "decode", decode_us)
            # The hot path makes the decoded record the event's own, so each run gets freshly decoded ones.
            records = [codec.decode(sample.payload).record for sample in samples]

            def rules_only(rules: Rules = rules, records: list[dict[str, Any]] = records) -> None:
                for sample, record in zip(samples, records, strict=True):
                    rules(sample.event_type, record, sample.source, today)

            def decode_and_rules(rules: Rules = rules) -> None:
                for sample in samples:
                    rules(sample.event_type, codec.decode(sample.payload).record, sample.source, today)

            keep(path, "rules", cpu_us_per_event(rules_only, events))
            keep(path, "total", cpu_us_per_event(decode_and_rules, events))
    return best


def check_paths_agree(codec: AvroCodec, samples: Sequence[Sample], today: date) -> None:
    """Both paths accept every example and build equal events, so the figures compare like with like."""
    for sample in samples:
        built = [
            rules(sample.event_type, codec.decode(sample.payload).record, sample.source, today)
            for rules in PATHS.values()
        ]
        if built[0] != built[1] or built[0].model_dump() != built[1].model_dump():
            raise SystemExit(f"{sample.event_type}: the paths build different events")


def report(figures: dict[str, dict[str, float]], types: int, events: int, repeat: int) -> str:
    lines = [
        f"ingest of the example events of {types} event types, {events} events a run, best of {repeat} runs",
        "CPU microseconds per event",
        f"{'path':<10} {'decode':>8} {'rules':>8} {'total':>8}",
    ]
    for path, stages in figures.items():
        lines.append(f"{path:<10} {stages['decode']:>8.1f} {stages['rules']:>8.1f} {stages['total']:>8.1f}")
    lines.append(
        f"ingest_us={figures['hot path']['total']:.1f} baseline_us={figures['validated']['total']:.1f} "
        f"target_us={TARGET_US}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4800, help="events a run, the examples taken in turn")
    parser.add_argument("--repeat", type=int, default=15, help="runs of each path; the best counts")
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")

    codec = hub_codec()
    now = datetime.now(UTC)
    examples = example_payloads(codec, now)
    check_paths_agree(codec, examples, now.date())
    samples = list(islice(cycle(examples), args.events))
    figures = measure(codec, samples, now.date(), args.repeat)
    print(report(figures, len(examples), len(samples), args.repeat))


if __name__ == "__main__":
    main()
