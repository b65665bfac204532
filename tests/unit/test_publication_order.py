"""The ordinary lane's publication order: records fetched from several agency topics go to the worker in the
order they were published, held back only while a partition may still hold an earlier one."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from hub.runtime.publication_order import PublicationOrder, in_chunks

COURT = TopicPartition("agency.court.events", 0)
VCS = TopicPartition("agency.vcs.events", 0)
PRISON = TopicPartition("agency.prison.events", 0)
ALL = [COURT, VCS, PRISON]


def record(tp: TopicPartition, offset: int, published_ms: int) -> ConsumerRecord:
    return ConsumerRecord(
        tp.topic, tp.partition, offset, published_ms, 0, None, f"{tp.topic}@{offset}".encode(), None, 0, 0, []
    )


@dataclass
class Broker:
    """What the consumer knows from its fetches: each partition's end, and when a fetch last answered for it."""

    ends: dict[TopicPartition, int] = field(default_factory=dict)
    answered_ms: dict[TopicPartition, int] = field(default_factory=dict)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.ends.get(partition)

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None:
        return self.answered_ms.get(partition)

    def fetch_answered(self, at_ms: int, ends: dict[TopicPartition, int]) -> None:
        """A fetch answered at `at_ms` for these partitions, which then ended at these offsets."""
        self.ends.update(ends)
        self.answered_ms.update(dict.fromkeys(ends, at_ms))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def names(records: list[ConsumerRecord]) -> list[str]:
    return [record.value.decode() for record in records]


def started(broker: Broker, clock: Clock | None = None) -> PublicationOrder:
    """An order over ALL, each partition starting at offset 0."""
    order = PublicationOrder(max_wait_seconds=0.5, clock=clock or Clock())
    for tp in ALL:
        order.starts_at(tp, 0)
    return order


def test_a_referral_fetched_before_its_sentence_waits_for_it_and_follows_it() -> None:
    broker = Broker()
    order = started(broker)
    # The first fetch brought only the vcs partition's records; the court's are still on the broker.
    broker.fetch_answered(1000, {COURT: 2, VCS: 2, PRISON: 0})
    order.add({VCS: [record(VCS, 0, 11), record(VCS, 1, 21)]}, broker)

    assert order.take(500, broker, ALL) == []

    broker.fetch_answered(1050, {COURT: 2, VCS: 2, PRISON: 0})
    order.add({COURT: [record(COURT, 0, 10), record(COURT, 1, 20)]}, broker)
    assert names(order.take(500, broker, ALL)) == [
        "agency.court.events@0",
        "agency.vcs.events@0",
        "agency.court.events@1",
        "agency.vcs.events@1",
    ]
    assert len(order) == 0


def test_records_go_as_far_as_every_partition_with_more_to_fetch_has_been_read() -> None:
    broker = Broker()
    order = started(broker)
    broker.fetch_answered(1000, {COURT: 5, VCS: 3, PRISON: 0})
    order.add(
        {
            COURT: [record(COURT, 0, 10), record(COURT, 1, 30)],
            VCS: [record(VCS, n, 15 + 10 * n) for n in range(3)],
        },
        broker,
    )

    # The court has three more records on the broker, published at 30 ms or later: the vcs record of 35 ms waits.
    assert names(order.take(500, broker, ALL)) == [
        "agency.court.events@0",
        "agency.vcs.events@0",
        "agency.vcs.events@1",
        "agency.court.events@1",
    ]
    assert order.take(500, broker, ALL) == []

    broker.fetch_answered(1050, {COURT: 5, VCS: 3, PRISON: 0})
    order.add({COURT: [record(COURT, 2, 32), record(COURT, 3, 40), record(COURT, 4, 50)]}, broker)
    assert names(order.take(500, broker, ALL)) == [
        "agency.court.events@2",
        "agency.vcs.events@2",
        "agency.court.events@3",
        "agency.court.events@4",
    ]


def test_a_partition_seen_empty_before_the_record_was_fetched_is_asked_again_first() -> None:
    broker = Broker()
    order = started(broker)
    # Before the burst every partition was seen with nothing to fetch.
    broker.fetch_answered(900, {COURT: 0, VCS: 0, PRISON: 0})
    # Then a fetch answered only for vcs (the others were not in it): the court may have had records by then.
    broker.fetch_answered(1000, {VCS: 1})
    order.add({VCS: [record(VCS, 0, 950)]}, broker)
    assert order.take(500, broker, ALL) == []

    # The next fetch shows the court and prison still with nothing: the referral goes.
    broker.fetch_answered(1040, {COURT: 0, PRISON: 0})
    assert names(order.take(500, broker, ALL)) == ["agency.vcs.events@0"]


def test_records_that_waited_too_long_for_a_partition_go_in_publication_order_whatever_it_holds() -> None:
    broker = Broker()
    clock = Clock()
    order = started(broker, clock)
    broker.fetch_answered(1000, {COURT: 3, VCS: 2, PRISON: 0})  # the court cannot be fetched (say)
    order.add({VCS: [record(VCS, 0, 5), record(VCS, 1, 6)]}, broker)
    assert order.take(500, broker, ALL) == []
    assert order.seconds_until_due() == 0.5

    clock.now += 0.3  # time spent waiting, or applying other events, counts the same
    assert order.take(500, broker, ALL) == []
    assert order.seconds_until_due() == pytest.approx(0.2)

    clock.now += 0.2
    assert order.seconds_until_due() == 0.0
    assert names(order.take(500, broker, ALL)) == ["agency.vcs.events@0", "agency.vcs.events@1"]
    assert order.seconds_until_due() is None


def test_records_left_only_by_the_batch_limit_are_due_at_once() -> None:
    broker = Broker()
    order = started(broker)
    broker.fetch_answered(1000, {COURT: 0, VCS: 3, PRISON: 0})
    order.add({VCS: [record(VCS, n, n) for n in range(3)]}, broker)
    assert len(order.take(2, broker, ALL)) == 2
    assert order.seconds_until_due() == 0.0
    assert len(order.take(2, broker, ALL)) == 1
    assert order.seconds_until_due() is None


def test_a_partition_never_fetched_holds_the_others_back() -> None:
    broker = Broker()
    order = PublicationOrder(max_wait_seconds=0.5, clock=Clock())
    broker.fetch_answered(1000, {VCS: 1})
    order.add({VCS: [record(VCS, 0, 5)]}, broker)
    assert order.needs_start(broker, ALL) == []  # the court and prison have not been fetched yet
    assert order.take(500, broker, ALL) == []

    broker.fetch_answered(1010, {COURT: 4, PRISON: 4})
    # Where their fetches start is asked of the consumer: both had been read to the end already.
    assert order.needs_start(broker, ALL) == [COURT, PRISON]
    order.starts_at(COURT, 4)
    order.starts_at(PRISON, 4)
    assert names(order.take(500, broker, ALL)) == ["agency.vcs.events@0"]


def test_a_batch_keeps_to_its_limit_but_does_not_split_a_millisecond() -> None:
    broker = Broker()
    order = started(broker)
    broker.fetch_answered(1000, {COURT: 3, VCS: 3, PRISON: 0})
    order.add(
        {
            COURT: [record(COURT, 0, 1), record(COURT, 1, 2), record(COURT, 2, 3)],
            VCS: [record(VCS, 0, 1), record(VCS, 1, 2), record(VCS, 2, 3)],
        },
        broker,
    )
    first = order.take(3, broker, ALL)
    # A sentence and its allocation published in the same millisecond stay together.
    assert [r.timestamp for r in first] == [1, 1, 2, 2]
    assert [r.timestamp for r in order.take(3, broker, ALL)] == [3, 3]


def test_partitions_holding_a_batch_or_more_are_named_so_the_lane_stops_fetching_them() -> None:
    broker = Broker()
    order = started(broker)
    broker.fetch_answered(1000, {COURT: 3, VCS: 1, PRISON: 0})
    order.add({COURT: [record(COURT, n, n) for n in range(3)], VCS: [record(VCS, 0, 9)]}, broker)
    assert order.holding_at_least(3) == {COURT}

    order.restart()  # the lane's partitions changed
    assert len(order) == 0
    assert order.holding_at_least(1) == set()


@dataclass(frozen=True)
class Message:
    name: str
    published_ms: int


def test_chunks_end_where_the_millisecond_of_publication_changes() -> None:
    messages = [Message(f"m{n}", ms) for n, ms in enumerate([1, 1, 2, 2, 2, 3, 4, 4])]
    chunks = list(in_chunks(messages, 2, lambda message: message.published_ms))
    assert [[m.published_ms for m in chunk] for chunk in chunks] == [[1, 1], [2, 2, 2], [3, 4, 4]]
    assert [m for chunk in chunks for m in chunk] == messages
    assert list(in_chunks([], 100, lambda message: message.published_ms)) == []
