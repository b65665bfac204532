"""Two workers of one hub share the agency topics: each reads the inbound partitions whose retries faust's group
gave it (hub/runtime/lanes.py), so together they read every partition once, and every event is routed once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.runtime.processes import free_port
from hub.settings import Settings
from tests.integration.conftest import Hub, _postgres_database, new_hub, running_worker
from tests.integration.test_walking_skeleton import publish_ok, referral, release, releases, sentence
from tests.integration.waiting import eventually

CASES = 6
PARTITIONS = set(range(Settings().topic_partitions))  # of every topic the hub creates
READING = re.compile(r"ordinary lane: reading partitions \[([\d, ]*)\]")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()  # several workers share PostgreSQL in production


def partitions_read(log: Path) -> set[int] | None:
    """The partitions a worker's ordinary lane took last, from its log; None before it took any."""
    found = READING.findall(log.read_text(errors="replace")) if log.exists() else []
    if not found:
        return None
    return {int(number) for number in found[-1].split(",") if number.strip()}


def test_two_workers_read_every_inbound_partition_once_and_route_every_event_once(
    broker: str, postgres_url: str, tmp_path: Path
) -> None:
    first = new_hub(broker, postgres_url, tmp_path / "first")
    second = Hub(
        env={**first.env, "HUB_WEB_PORT": str(free_port()), "HUB_DATA_DIR": str(tmp_path / "second" / "hub")},
        data_dir=tmp_path / "second" / "hub",
    )
    with contextlib.ExitStack() as workers:
        workers.enter_context(contextlib.contextmanager(running_worker)(first))
        workers.enter_context(contextlib.contextmanager(running_worker)(second))
        logs = [hub.data_dir / "worker.log" for hub in (first, second)]

        def shared(read: list[set[int] | None]) -> bool:
            mine, theirs = read
            return (
                mine is not None and theirs is not None and not mine & theirs and mine | theirs == PARTITIONS
            )

        read = eventually(lambda: [partitions_read(log) for log in logs], shared, timeout=60)
        assert shared(read), f"partitions each worker's ordinary lane reads: {read}"
        assert all(read), f"each worker reads some partitions: {read}"

        cases = [(f"0{n}TW000012{n}", f"A{n}234TW"[:7], f"TW-{n}") for n in range(CASES)]
        publish_ok(first, "court", *(sentence(ref, noms) for ref, noms, _ in cases))
        publish_ok(
            first,
            "witness-care",
            *(referral(ref, person, "Jane Victim", "LS6 2AB") for ref, _, person in cases),
        )
        eventually(
            lambda: first.read_queue("YH"),
            lambda found: len([n for n in found if n["event_type"] == "VictimReferred"]) >= CASES,
            timeout=60,
        )
        publish_ok(second, "prison", *(release(noms) for _, noms, _ in cases))
        queue = eventually(
            lambda: first.read_queue("YH"), lambda found: len(releases(found)) >= CASES, timeout=60
        )

    assert sorted(n["person_ref"] for n in releases(queue)) == sorted(person for _, _, person in cases)
