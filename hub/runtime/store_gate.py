"""One piece of case-store work at a time in a worker, urgent work first.

A worker has several kinds of store work: the main lane's batches, the urgent lane's, the retry tiers', the
deadline timer and the outbox sweep. Run side by side they only fight over the GIL and the database's write
lock (SQLite has a single writer, and a waiting writer sleeps in steps), which makes every batch several times
slower than alone and leaves urgent events waiting seconds behind a backlog. Through this gate they take
turns, and a waiting urgent batch goes before every waiting ordinary one. An ordinary chunk that is being applied
asks `urgent_waiting` between events and, when an urgent batch waits, commits what it has applied and hands the
rest back (`Pipeline.apply`'s `should_yield`, also asked between the queries that look up the next events and
between groups of offenders), so an urgent batch waits for about one event or one query, and the write of what
is decided, not one chunk. Work that does not touch the case store does not take a turn: decoding and
validating a chunk (`Pipeline.ingest_all`), and counting rows for the deadline gauges (`Worker.watch_counts`),
which neither writes nor holds the GIL while SQLite counts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

URGENT = 0
ORDINARY = 1


class StoreGate:
    def __init__(self, urgent_in_loop: bool = False) -> None:
        self.urgent_in_loop = urgent_in_loop
        self._busy = False
        # (priority, arrival, future): the future is resolved when it is that work's turn.
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def run(self, work: Callable[..., T], *args: object, urgent: bool = False) -> T:
        """Run blocking `work(*args)` in a thread when its turn comes; urgent work in the event loop's own thread
        if `urgent_in_loop`.

        Urgent work is a small batch, a few ms of the store. Handed to a thread during a drain, it first waits for
        the GIL, held in 5 ms slices by the event loop's own work (the ordinary lane sending what its last chunk
        decided, decoding fetches), then shares it with that work, so the hop alone can take longer than the work.
        But while work in the loop's thread waits on the database, nothing else in the process runs (health,
        heartbeats), so the worker asks for it only for an embedded SQLite store, which has no network to wait
        on."""
        await self._take_turn(URGENT if urgent else ORDINARY)
        try:
            if urgent and self.urgent_in_loop:
                return work(*args)
            return await asyncio.to_thread(work, *args)
        finally:
            self._pass_turn()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, turn in self._waiting if not turn.done())

    def urgent_waiting(self) -> bool:
        """Whether urgent work waits for its turn. Asked from the thread doing the current work: the heap's first
        entry is read without a lock, and a stale answer only moves a yield by one event."""
        try:
            priority, _, turn = self._waiting[0]  # the heap's first entry is its most urgent
        except IndexError:
            return False
        return priority == URGENT and not turn.done()

    async def _take_turn(self, priority: int) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn()  # the turn came as the caller gave up: hand it on
            raise

    def _pass_turn(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter's future is done: skip it
                turn.set_result(None)
                return
        self._busy = False
