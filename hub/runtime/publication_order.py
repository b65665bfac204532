"""The ordinary lane's records, handed to the worker in the order the agencies published them.

Agencies publish to topics of their own, so a court's sentence and the referral that follows it reach the hub on
different partitions. Read as they come, the fetch decides the order: Tansu answers a fetch with all that the
request's first partitions hold (up to 5 MB, whatever the per-partition limit), and aiokafka shuffles the
partitions of every request, so a drain could apply one topic's backlog before another's. Every referral or
allocation applied before its sentence is parked and applied again once the sentence comes: in a drain that
is a large share of the events, each applied twice, and the run is much slower.

So the lane holds what it fetched, partition by partition, and hands a record over only when no partition can
still hold an earlier one: each other partition either holds a record published no earlier, or was seen to have
nothing more to fetch in a fetch answered no earlier than the one that brought the record. Kafka Streams orders
a task's partitions the same way (`max.task.idle.ms`). Once the next record has waited `max_wait_seconds` for
another partition, records go in publication order whatever the others may hold, until that partition catches
up: a partition that cannot be fetched holds the others up no longer. The pipeline then sorts each chunk by the
envelope's `published_at` (the Kafka timestamp is the publishing client's clock, to the millisecond).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiokafka import ConsumerRecord, TopicPartition

NEVER = -1  # a fetch time earlier than any real one
M = TypeVar("M")


class FetchProgress(Protocol):
    """What the consumer learnt of a partition from the last fetch answered for it (aiokafka's consumer)."""

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None: ...


@dataclass(frozen=True)
class Held:
    record: ConsumerRecord
    fetched_at_ms: int  # when the fetch that brought it was answered (the consumer's clock)


class PublicationOrder:
    """Records fetched from the partitions a lane reads, waiting for their turn."""

    def __init__(self, max_wait_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_wait_seconds = max_wait_seconds
        self.clock = clock
        self._held: dict[TopicPartition, deque[Held]] = {}
        self._fetched_to: dict[TopicPartition, int] = {}  # the offset each partition's next fetch starts at
        # Since when (monotonic) the next record has waited for a partition that may hold an earlier one.
        self._waiting_since: float | None = None
        self._ready = False  # the last `take` stopped at its limit: more may go at once

    def restart(self) -> None:
        """The lane's partitions changed: what was held is fetched again from the committed offsets."""
        self._held.clear()
        self._fetched_to.clear()
        self._waiting_since = None
        self._ready = False

    def needs_start(
        self, progress: FetchProgress, partitions: Sequence[TopicPartition]
    ) -> list[TopicPartition]:
        """Partitions that were fetched but never gave a record: where their fetches start is not known here."""
        return [tp for tp in partitions if tp not in self._fetched_to and progress.highwater(tp) is not None]

    def starts_at(self, partition: TopicPartition, offset: int) -> None:
        self._fetched_to.setdefault(partition, offset)

    def add(self, fetched: Mapping[TopicPartition, list[ConsumerRecord]], progress: FetchProgress) -> None:
        for tp, records in fetched.items():
            if not records:
                continue
            fetched_at = progress.last_poll_timestamp(tp) or NEVER
            self._held.setdefault(tp, deque()).extend(Held(record, fetched_at) for record in records)
            self._fetched_to[tp] = records[-1].offset + 1

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._held.values())

    def holding_at_least(self, count: int) -> set[TopicPartition]:
        """Partitions holding `count` records or more: the lane stops fetching them, so that a fetch brings the
        others' records instead."""
        return {tp for tp, queue in self._held.items() if len(queue) >= count}

    def take(
        self, limit: int, progress: FetchProgress, partitions: Sequence[TopicPartition]
    ) -> list[ConsumerRecord]:
        """Up to `limit` records in publication order, each one that no partition of `partitions` (those the
        lane reads) can still precede, or all in publication order once the next has waited too long."""
        caught_up_at = {tp: self._caught_up_at(tp, progress) for tp in partitions}
        # The earliest fetch among the partitions that hold nothing, which showed each of them with nothing more
        # to fetch (NEVER if one has more, or was never fetched): a record fetched later may have missed a record
        # published just before it on one of them.
        empty_since = min(
            (caught_up_at[tp] for tp in partitions if not self._held.get(tp)), default=float("inf")
        )
        heads = [
            (queue[0].record.timestamp, n, tp) for n, (tp, queue) in enumerate(self._held.items()) if queue
        ]
        heapq.heapify(heads)
        now = self.clock()
        overdue = self._waiting_since is not None and now - self._waiting_since >= self.max_wait_seconds
        taken: list[ConsumerRecord] = []
        # Past the limit only to finish a millisecond: the timestamp cannot order the records within one (a burst
        # publishes dozens), the pipeline's sort by `published_at` can, if they are in one batch.
        while heads and (len(taken) < limit or (taken and heads[0][0] == taken[-1].timestamp)):
            _, n, tp = heads[0]
            queue = self._held[tp]
            head = queue[0]
            # Every other partition that holds records holds none earlier (they are heads of the heap).
            if head.fetched_at_ms > empty_since:
                if self._waiting_since is None:
                    self._waiting_since = now
                if not overdue:
                    break
            else:
                self._waiting_since = None
            queue.popleft()
            taken.append(head.record)
            if queue:
                heapq.heapreplace(heads, (queue[0].record.timestamp, n, tp))
            else:
                heapq.heappop(heads)
                empty_since = min(empty_since, caught_up_at.get(tp, NEVER))
        self._ready = bool(heads) and len(taken) >= limit
        return taken

    def seconds_until_due(self) -> float | None:
        """How long the lane may wait for new records before it calls `take` again: None while it holds none, 0
        when the last `take` left records only for its limit, else until the next record goes whatever the
        other partitions hold."""
        if not any(self._held.values()):
            return None
        if self._ready or self._waiting_since is None:
            return 0.0
        return max(0.0, self._waiting_since + self.max_wait_seconds - self.clock())

    def _caught_up_at(self, tp: TopicPartition, progress: FetchProgress) -> int:
        """When a fetch last showed the partition with nothing more to fetch (NEVER: it has more, or unknown)."""
        highwater = progress.highwater(tp)
        polled = progress.last_poll_timestamp(tp)
        fetched_to = self._fetched_to.get(tp)
        if highwater is None or polled is None or fetched_to is None or fetched_to < highwater:
            return NEVER
        return polled


def in_chunks(messages: Sequence[M], size: int, published_ms: Callable[[M], int | None]) -> Iterator[list[M]]:
    """Consecutive chunks of `size` messages or a few more: a chunk ends where the millisecond of publication
    changes, so that events published in one millisecond are sorted by `published_at` together."""
    start = 0
    while start < len(messages):
        end = min(start + size, len(messages))
        while end < len(messages) and published_ms(messages[end]) == published_ms(messages[end - 1]):
            end += 1
        yield list(messages[start:end])
        start = end
