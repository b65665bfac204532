"""The retry ladder's bookkeeping: what a retry record carries, where it goes next, and who may go first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hub.messages import InboundMessage
from hub.runtime.retry import RetryBook, RetryLadder, RetryState, token

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LADDER = RetryLadder(lambda tier: f"x.hub.retry.{tier}", (2.0, 10.0, 60.0))


def message(offset: int, key: bytes | None = b"A1234BC") -> InboundMessage:
    return InboundMessage(
        "x.agency.prison.events", 3, offset, 1_700_000_000_000, key, b"\xc3\x01payload", [("trace", b"t-1")]
    )


def test_a_retry_record_keeps_the_original_and_reads_back_as_it_was_first_consumed() -> None:
    original = message(41)
    state = RetryState()
    state.failed("route", "OperationalError", NOW)

    record = LADDER.record(original, state, 1, NOW)
    consumed = InboundMessage(record.topic, 0, 7, None, record.key, record.value, record.headers)
    back = LADDER.read(consumed)

    assert record.topic == "x.hub.retry.1"
    assert record.partition == 3  # same partition as the original: one worker owns both
    assert (record.key, record.value) == (original.key, original.value)
    assert back.message == original
    assert back.state.attempts == 1 and back.state.tier == 1
    assert back.state.first_failure_at == NOW
    assert [(f.stage, f.error_class, f.tier) for f in back.state.history] == [
        ("route", "OperationalError", 0)
    ]
    assert NOW + timedelta(seconds=1.6) <= back.not_before <= NOW + timedelta(seconds=2.4)
    assert back.behind is False


def test_each_failure_climbs_one_tier_and_the_ladder_ends_in_a_dead_letter() -> None:
    state = RetryState()
    tiers = []
    for attempt in range(4):
        state.failed("ingest", "RegistryUnavailable", NOW + timedelta(minutes=attempt))
        tiers.append(LADDER.next_tier(state))

    assert tiers == [1, 2, 3, None]
    assert state.first_failure_at == NOW
    assert len(json.loads(state.history_json())) == 4


def test_delays_grow_with_the_tier_and_carry_jitter() -> None:
    waits = {
        tier: [(LADDER.not_before(tier, NOW) - NOW).total_seconds() for _ in range(200)] for tier in (1, 2, 3)
    }

    assert max(waits[1]) < min(waits[2]) and max(waits[2]) < min(waits[3])
    assert len(set(waits[2])) > 100  # not all in step


def test_history_stays_bounded_however_long_a_message_fails() -> None:
    state = RetryState()
    for attempt in range(100):
        state.failed("route", "OperationalError", NOW + timedelta(seconds=attempt))

    assert state.attempts == 100
    assert len(state.history) <= 12
    assert state.history[0].at == NOW and state.history[-1].at == NOW + timedelta(seconds=99)


def test_later_messages_of_a_waiting_key_queue_behind_it_in_order() -> None:
    book = RetryBook()
    first, second, third = message(1), message(2), message(3)
    other = message(4, key=b"Z9999ZZ")

    book.wait(first.key, token(first), 2, NOW)
    book.wait(second.key, token(second), 2, NOW)
    book.wait(third.key, token(third), 2, NOW)

    assert book.holds(first.key) and not book.holds(other.key)
    assert book.is_head(first.key, token(first))
    assert not book.is_head(second.key, token(second))
    assert book.is_head(other.key, token(other))  # other keys are never held back
    book.done(first.key, token(first))
    assert book.is_head(second.key, token(second)) and not book.is_head(third.key, token(third))
    book.done(second.key, token(second))
    book.done(third.key, token(third))
    assert not book.holds(first.key)


def test_moving_up_a_tier_keeps_a_message_its_place_in_the_queue() -> None:
    book = RetryBook()
    first, second = message(1), message(2)
    book.wait(first.key, token(first), 1, NOW)
    book.wait(second.key, token(second), 1, NOW)
    book.wait(first.key, token(first), 2, NOW)  # failed again: tier 2

    assert book.is_head(first.key, token(first))
    assert book.head_tier(first.key) == 2
    assert book.waiting_by_tier(LADDER.tiers) == {1: 1, 2: 1, 3: 0}
    assert book.oldest_failure() == NOW


def test_unkeyed_messages_are_counted_but_never_hold_anything_back() -> None:
    book = RetryBook()
    loose = message(9, key=None)
    book.wait(None, token(loose), 1, NOW)

    assert book.is_head(None, token(loose))
    assert book.waiting_by_tier(LADDER.tiers)[1] == 1
    book.done(None, token(loose))
    assert book.waiting_by_tier(LADDER.tiers)[1] == 0
