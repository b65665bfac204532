"""Bounded waits for integration tests: nothing here can wait forever."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors.sealing import Opener, is_sealed
from hub.runtime.processes import became_healthy

T = TypeVar("T")


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    if not became_healthy(url, process, timeout):
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        raise AssertionError(f"worker not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout: float, interval: float = 0.5) -> T:
    """Call `probe` until `done(result)` or the timeout; returns the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def read_topic(bootstrap: str, topic: str, timeout: float = 5.0, opener: Opener | None = None) -> list:
    """Every record on a topic, from the beginning, waiting at most `timeout` seconds; with an `opener`, each
    sealed value opened (as its reader sees it), else as the bytes on the broker."""

    async def read() -> list:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = None
            deadline = time.monotonic() + timeout
            while not partitions and time.monotonic() < deadline:
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await consumer.topics()  # refreshes the metadata
                    await asyncio.sleep(0.1)
            if not partitions:
                return []
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            records = []
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for items in batch.values():
                    records.extend(items)
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
            if opener is None:
                return records
            return [replace(r, value=opener.open(r.value)) if is_sealed(r.value) else r for r in records]
        finally:
            await consumer.stop()

    return asyncio.run(read())


def metrics_text(web: str) -> str:
    with urllib.request.urlopen(f"{web}/metrics", timeout=5) as response:
        return response.read().decode()


def counter(text: str, sample: str, **labels: str) -> float:
    """Sum of a sample's values over every label set that contains `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(web: str, sample: str, **labels: str) -> float:
    """One figure from a running worker's /metrics."""
    return counter(metrics_text(web), sample, **labels)
