"""The retry ladder: transient failures wait in retry topics, off the main path, then go to the dead-letter topic.

A message that failed for a reason that may pass (the database or the schema registry unreachable) is written
to the first retry topic with the time before which it must not be tried again; each further failure moves it
one tier up, with a longer delay and some jitter, until the ladder runs out and it becomes a dead letter
carrying its history. The original key, value and headers travel untouched; the hub's bookkeeping is in
`hub.retry.*` and `hub.original.*` headers.

Ordering: events with one key (the identifier an agency publishes one offender's events under) must not
overtake an earlier one that waits in retry. `RetryBook` remembers, per key, the messages waiting in order;
a later message with a waiting key joins the queue behind them ("behind", no attempt counted) and is applied
only when it reaches the head. Retry records go to the partition their original came from, so with several
workers the worker that owns an inbound partition also owns its retries. The book lives in memory: after a
restart, an event can overtake a same-key event in retry until the retry consumer has seen that one again.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.messages import Headers, InboundMessage, OutboundRecord

ATTEMPTS = "hub.retry.attempts"
NOT_BEFORE = "hub.retry.not_before"
HISTORY = "hub.retry.history"
BEHIND = "hub.retry.behind"
FIRST_FAILURE = "hub.first_failure_at"
ORIGIN = ("hub.original.topic", "hub.original.partition", "hub.original.offset", "hub.original.timestamp")
HUB_HEADERS = (ATTEMPTS, NOT_BEFORE, HISTORY, BEHIND, FIRST_FAILURE, *ORIGIN)
# Keep the history header bounded: the first failures and the last ones say what an operator needs.
HISTORY_KEPT = 12


@dataclass(frozen=True)
class Failure:
    at: datetime
    stage: str
    error_class: str
    tier: int

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "stage": self.stage,
            "error_class": self.error_class,
            "tier": self.tier,
        }


@dataclass
class RetryState:
    """What a message has been through: failed attempts, when it first failed, each failure."""

    attempts: int = 0
    first_failure_at: datetime | None = None
    history: list[Failure] = field(default_factory=list)
    tier: int = 0  # the tier it was consumed from; 0 is the main path

    def failed(self, stage: str, error_class: str, at: datetime) -> None:
        self.attempts += 1
        self.first_failure_at = self.first_failure_at or at
        self.history.append(Failure(at, stage, error_class, self.tier))
        if len(self.history) > HISTORY_KEPT:
            del self.history[HISTORY_KEPT // 2]

    def history_json(self) -> str:
        return json.dumps([failure.as_json() for failure in self.history])


@dataclass(frozen=True)
class RetryMessage:
    """A message read back from a retry topic, as it was consumed the first time."""

    message: InboundMessage
    state: RetryState
    not_before: datetime
    behind: bool


def token(message: InboundMessage) -> str:
    """Names a message for the book: where it was first consumed."""
    return f"{message.topic}/{message.partition}/{message.offset}"


class RetryLadder:
    """The tiers and their delays; tier n (1-based) waits delays[n - 1] seconds."""

    def __init__(
        self, topic_of: Callable[[int], str], delays: tuple[float, ...], jitter: float = 0.2
    ) -> None:
        if not delays:
            raise ValueError("the retry ladder needs at least one tier")
        self.topic_of = topic_of
        self.delays = delays
        self.jitter = jitter

    @property
    def tiers(self) -> range:
        return range(1, len(self.delays) + 1)

    def topic(self, tier: int) -> str:
        return self.topic_of(tier)

    def tier_of_topic(self, topic: str) -> int | None:
        for tier in self.tiers:
            if topic == self.topic(tier):
                return tier
        return None

    def next_tier(self, state: RetryState) -> int | None:
        """Where a message goes after `state.attempts` failures; None once the ladder has run out."""
        return state.attempts if state.attempts <= len(self.delays) else None

    def not_before(self, tier: int, now: datetime) -> datetime:
        delay = self.delays[tier - 1] * random.uniform(1 - self.jitter, 1 + self.jitter)
        return datetime.fromtimestamp(now.timestamp() + delay, UTC)

    def record(
        self, message: InboundMessage, state: RetryState, tier: int, now: datetime, *, behind: bool = False
    ) -> OutboundRecord:
        """The retry record: the original untouched, plus where it came from and what it has been through."""
        added: Headers = [
            ("hub.original.topic", message.topic.encode()),
            ("hub.original.partition", str(message.partition).encode()),
            ("hub.original.offset", str(message.offset).encode()),
            ("hub.original.timestamp", str(message.timestamp_ms or "").encode()),
            (ATTEMPTS, str(state.attempts).encode()),
            (NOT_BEFORE, self.not_before(tier, now).isoformat().encode()),
            (HISTORY, state.history_json().encode()),
            (FIRST_FAILURE, (state.first_failure_at or now).isoformat().encode()),
        ]
        if behind:
            added.append((BEHIND, b"1"))
        partition = message.partition if message.partition >= 0 else None
        return OutboundRecord(
            self.topic(tier), message.key, message.value, [*message.headers, *added], partition=partition
        )

    def read(self, consumed: InboundMessage) -> RetryMessage:
        """Undo `record`: the original message, its state and when it may be tried again."""
        headers = dict(consumed.headers)
        original = [(k, v) for k, v in consumed.headers if k not in HUB_HEADERS]

        def text(name: str, default: str = "") -> str:
            return headers.get(name, default.encode()).decode("utf-8", "replace")

        message = InboundMessage(
            topic=text("hub.original.topic", consumed.topic),
            partition=int(text("hub.original.partition", "-1") or -1),
            offset=int(text("hub.original.offset", "-1") or -1),
            timestamp_ms=int(text("hub.original.timestamp") or 0) or None,
            key=consumed.key,
            value=consumed.value,
            headers=original,
        )
        history = [
            Failure(datetime.fromisoformat(f["at"]), f["stage"], f["error_class"], int(f["tier"]))
            for f in json.loads(text(HISTORY, "[]") or "[]")
        ]
        first = text(FIRST_FAILURE)
        state = RetryState(
            attempts=int(text(ATTEMPTS, "0") or 0),
            first_failure_at=datetime.fromisoformat(first) if first else None,
            history=history,
            tier=self.tier_of_topic(consumed.topic) or 0,
        )
        not_before = text(NOT_BEFORE)
        return RetryMessage(
            message=message,
            state=state,
            not_before=datetime.fromisoformat(not_before) if not_before else datetime.now(UTC),
            behind=text(BEHIND) == "1",
        )


@dataclass
class Waiting:
    token: str
    tier: int
    first_failure_at: datetime


class RetryBook:
    """Which messages wait in retry, in their order per key: what keeps one offender's events in order."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, deque[str]] = {}
        self._waiting: dict[str, Waiting] = {}

    def holds(self, key: bytes | None) -> bool:
        return key is not None and key in self._by_key

    def head_tier(self, key: bytes) -> int:
        return self._waiting[self._by_key[key][0]].tier

    def is_head(self, key: bytes | None, name: str) -> bool:
        return key is None or key not in self._by_key or self._by_key[key][0] == name

    def wait(self, key: bytes | None, name: str, tier: int, first_failure_at: datetime) -> None:
        """Record that a message waits in `tier`; a new one joins the back of its key's queue."""
        if name not in self._waiting and key is not None:
            self._by_key.setdefault(key, deque()).append(name)
        self._waiting[name] = Waiting(name, tier, first_failure_at)

    def done(self, key: bytes | None, name: str) -> None:
        """The message was applied or dead-lettered: the next one of its key may go."""
        self._waiting.pop(name, None)
        if key is not None and key in self._by_key:
            queue = self._by_key[key]
            if name in queue:
                queue.remove(name)
            if not queue:
                del self._by_key[key]

    def waiting_by_tier(self, tiers: range) -> dict[int, int]:
        counts = dict.fromkeys(tiers, 0)
        for entry in self._waiting.values():
            counts[entry.tier] = counts.get(entry.tier, 0) + 1
        return counts

    def oldest_failure(self) -> datetime | None:
        return min((entry.first_failure_at for entry in self._waiting.values()), default=None)
