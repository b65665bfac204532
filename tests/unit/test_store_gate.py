"""The store gate: one piece of case-store work at a time, urgent work before ordinary work that waits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hub.runtime.store_gate import StoreGate


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=10))


def test_waiting_urgent_work_goes_before_ordinary_work_that_queued_earlier() -> None:
    order: list[str] = []
    release = threading.Event()

    async def scenario() -> None:
        gate = StoreGate()
        first = asyncio.create_task(gate.run(lambda: (release.wait(5), order.append("first"))))
        await asyncio.sleep(0.05)  # the first holds the gate
        ordinary = asyncio.create_task(gate.run(order.append, "ordinary"))
        await asyncio.sleep(0.01)
        urgent = asyncio.create_task(gate.run(order.append, "urgent", urgent=True))
        await asyncio.sleep(0.01)
        assert gate.waiting == 2
        release.set()
        await asyncio.gather(first, ordinary, urgent)

    run(scenario())
    assert order == ["first", "urgent", "ordinary"]


def test_work_never_overlaps() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.005)
        with lock:
            running -= 1

    async def scenario() -> None:
        gate = StoreGate()
        await asyncio.gather(*(gate.run(work, urgent=n % 3 == 0) for n in range(30)))

    run(scenario())
    assert most == 1


def test_failing_work_raises_to_its_caller_and_frees_the_gate() -> None:
    def fail() -> None:
        raise RuntimeError("database away")

    async def scenario() -> str:
        gate = StoreGate()
        with pytest.raises(RuntimeError):
            await gate.run(fail)
        return await gate.run(lambda: "next")

    assert run(scenario()) == "next"


def test_a_waiter_that_gives_up_does_not_block_those_behind_it() -> None:
    release = threading.Event()

    async def scenario() -> str:
        gate = StoreGate()
        first = asyncio.create_task(gate.run(release.wait, 5))
        await asyncio.sleep(0.05)
        impatient = asyncio.create_task(gate.run(lambda: "never"))
        patient = asyncio.create_task(gate.run(lambda: "done"))
        await asyncio.sleep(0.01)
        impatient.cancel()
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await impatient
        return await patient

    assert run(scenario()) == "done"


def test_work_in_its_turn_can_see_that_urgent_work_waits_but_not_ordinary_work() -> None:
    """What an ordinary batch asks between events (from its thread) to step aside for urgent work."""
    seen: list[tuple[str, bool]] = []
    ordinary_queued, urgent_queued, urgent_gone = threading.Event(), threading.Event(), threading.Event()

    def ordinary_chunk() -> None:
        seen.append(("alone", gate.urgent_waiting()))
        ordinary_queued.wait(5)
        seen.append(("ordinary waits", gate.urgent_waiting()))
        urgent_queued.wait(5)
        seen.append(("urgent waits", gate.urgent_waiting()))

    async def scenario() -> None:
        chunk = asyncio.create_task(gate.run(ordinary_chunk))
        await asyncio.sleep(0.05)
        ordinary = asyncio.create_task(gate.run(lambda: None))
        await asyncio.sleep(0.01)
        ordinary_queued.set()
        await asyncio.sleep(0.05)
        urgent = asyncio.create_task(gate.run(urgent_gone.set, urgent=True))
        await asyncio.sleep(0.01)
        urgent_queued.set()
        await asyncio.gather(chunk, ordinary, urgent)
        seen.append(("after", gate.urgent_waiting()))

    gate = StoreGate()
    run(scenario())
    assert seen == [("alone", False), ("ordinary waits", False), ("urgent waits", True), ("after", False)]
    assert urgent_gone.is_set()


@pytest.mark.parametrize("urgent_in_loop", [True, False])
def test_urgent_work_runs_in_the_event_loops_thread_only_when_asked(urgent_in_loop: bool) -> None:
    async def scenario() -> tuple[threading.Thread, threading.Thread]:
        gate = StoreGate(urgent_in_loop=urgent_in_loop)
        urgent = await gate.run(threading.current_thread, urgent=True)
        ordinary = await gate.run(threading.current_thread)
        return urgent, ordinary

    urgent, ordinary = run(scenario())
    assert (urgent is threading.current_thread()) is urgent_in_loop
    assert ordinary is not threading.current_thread()  # ordinary work never holds up the event loop
