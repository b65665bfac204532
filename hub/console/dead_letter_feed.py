"""Follows the dead-letter topic for the console, so a page refresh does not re-read the whole topic.

It keeps the newest MAX_KEPT dead letters in memory (originals included, for replay); purged ones are hidden
when shown, from the case store's list. A broker hiccup restarts it where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.sealing import Opener
from hub.runtime.dead_letters import DeadLetter

log = logging.getLogger(__name__)

MAX_KEPT = 10_000
PARTITIONS_REFRESH_SECONDS = 30.0
RESTART_DELAY_SECONDS = 5.0


class DeadLetterFeed:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        opener: Opener,
        max_kept: int = MAX_KEPT,
        *,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_options = dict(client_options or {})  # the broker connection's security; none: plaintext
        self.opener = opener  # the operations keys: each dead letter is sealed for them
        self.topic = topic
        self.max_kept = max_kept
        self.letters: OrderedDict[str, DeadLetter] = OrderedDict()
        self.dropped = 0  # older dead letters no longer kept in memory (still on the topic)
        self.caught_up = False
        self.problem: str | None = None
        self._next: dict[int, int] = {}  # partition -> next offset to read

    def _keep(self, letter: DeadLetter) -> None:
        self.letters[letter.id] = letter
        while len(self.letters) > self.max_kept:
            self.letters.popitem(last=False)
            self.dropped += 1

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.problem = f"cannot read the dead-letter topic ({type(error).__name__}); retrying"
                log.warning("console: reading %s failed: %s", self.topic, type(error).__name__)
                await asyncio.sleep(RESTART_DELAY_SECONDS)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **self.client_options
        )
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            ends: dict[TopicPartition, int] = {}
            refreshed = 0.0
            while True:
                if time.monotonic() - refreshed > PARTITIONS_REFRESH_SECONDS or not partitions:
                    await consumer.topics()  # refreshes the metadata
                    found = sorted(consumer.partitions_for_topic(self.topic) or [])
                    if len(found) != len(partitions):
                        partitions = [TopicPartition(self.topic, p) for p in found]
                        consumer.assign(partitions)
                        for tp in partitions:
                            if tp.partition in self._next:
                                consumer.seek(tp, self._next[tp.partition])
                            else:
                                await consumer.seek_to_beginning(tp)
                        ends = await consumer.end_offsets(partitions) if not self.caught_up else {}
                    refreshed = time.monotonic()
                    if not partitions:
                        self.caught_up = True  # no topic yet: nothing has failed
                        await asyncio.sleep(1.0)
                        continue
                batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in batch.values():
                    for record in records:
                        self._keep(DeadLetter.from_record(record, self.opener))
                        self._next[record.partition] = record.offset + 1
                self.problem = None
                if not self.caught_up:
                    positions = {tp: await consumer.position(tp) for tp in partitions}
                    self.caught_up = all(positions[tp] >= ends.get(tp, 0) for tp in partitions)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
