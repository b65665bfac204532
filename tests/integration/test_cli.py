"""The agency-facing commands and `hub up`, run as a person would run them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from connectors.keys import KeysDirectory
from connectors.publisher import AgencyPublisher
from connectors.signatures import signers_for
from hub.runtime.processes import free_port
from tests.integration.conftest import HUB, ROOT, Hub
from tests.integration.test_walking_skeleton import sentence
from tests.integration.waiting import eventually, read_topic


def test_publish_reports_each_invalid_line_and_publishes_nothing(cli: Hub) -> None:
    good = json.dumps(sentence("01CL0000126", "A1234BC"))
    bad_noms = json.dumps(sentence("02CL0000226", "NOT-A-NOMS"))
    lines = f"{good}\n\n{bad_noms}\n{{not json\n"

    result = cli.run("publish", "--source", "court", input=lines)

    assert result.returncode == 1
    assert (
        "line 3: envelope.subject.noms_number: must be a letter, 4 digits and 2 letters (A1234BC)"
        in result.stderr
    )
    assert "line 4: not valid JSON" in result.stderr
    assert "nothing published" in result.stderr
    assert "NOT-A-NOMS" not in result.stderr
    assert read_topic(cli.env["HUB_BROKER"], f"{cli.prefix}agency.court.events", timeout=3) == []


def test_publish_with_skip_invalid_publishes_the_valid_lines(cli: Hub) -> None:
    lines = "\n".join(
        [json.dumps(sentence("01CL0000126", "A1234BC")), json.dumps({"event_type": "Nonsense"}), ""]
    )

    result = cli.run("publish", "--source", "court", "--skip-invalid", input=lines)

    assert result.returncode == 1  # something was wrong, even though the good line went
    published = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(p["line"], p["event_type"]) for p in published] == [(1, "SentenceImposed")]
    assert "line 2: event_type: is not an event type the hub knows" in result.stderr
    on_topic = read_topic(cli.env["HUB_BROKER"], f"{cli.prefix}agency.court.events")
    assert len(on_topic) == 1
    assert on_topic[0].value[:2] == b"\xc3\x01"


def test_publish_from_a_file(cli: Hub, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(sentence("01CL0000126", "A1234BC")) + "\n")
    result = cli.run("publish", "--source", "court", str(events))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_unknown_source_and_unit_are_clear_errors(cli: Hub) -> None:
    publish = cli.run("publish", "--source", "police", input="")
    read = cli.run("queue", "read", "--unit", "ZZ")
    assert publish.returncode == 2 and "unknown source 'police'" in publish.stderr
    assert read.returncode == 2 and "unknown unit 'ZZ'" in read.stderr


def _children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _kill_what_is_left(up: subprocess.Popen[str], children: list[int]) -> None:
    """After a test of `hub up`, whatever happened: nothing it started may outlive it."""
    if up.poll() is None:
        up.kill()
        up.wait(5)
    for pid in children:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_hub_up_demo_serves_health_metrics_and_a_notification_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HUB_DATA_DIR": str(tmp_path / "hub"), "HUB_WEB_PORT": str(port)}
    env.pop("HUB_BROKER", None)
    up = subprocess.Popen(
        [*HUB, "up", "--demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    children: list[int] = []
    try:
        output = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            output.append(line)
            if "demo       read it with" in line or line == "":
                break
        assert any(line.startswith("ready") for line in output), "".join(output)
        children = _children_of(up.pid)
        assert len(children) == 2  # the broker and the worker

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as health:
            assert health.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as metrics:
            assert b"hub_events_consumed_total" in metrics.read()
        reader_env = {k: v for k, v in env.items() if k != "HUB_WEB_PORT"}

        def read() -> list[dict]:
            result = subprocess.run(
                [*HUB, "queue", "read", "--unit", "YH", "--from-beginning", "--timeout", "2"],
                cwd=ROOT,
                env=reader_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            return [json.loads(line) for line in result.stdout.splitlines()]

        def released(found: list[dict]) -> list[tuple[str, str]]:
            # The demo's own case: simulated traffic for other cases flows beside it, to YH among others.
            return [
                (n["event_type"], n["vlo_id"])
                for n in found
                if n["event_type"] == "PrisonerReleased" and n["case_ref"] == "01DM0001226"
            ]

        queue = eventually(read, lambda found: len(released(found)) >= 1, timeout=30)
        assert released(queue) == [("PrisonerReleased", "vlo-demo-1")]
        assert any(n["victim_name"] == "Demo Victim" for n in queue)  # the unit's key opens its queue
        # On the broker itself, nobody without that key reads a name (the simulated traffic's dead letters too).
        address = (tmp_path / "hub" / "broker.address").read_text().strip()
        raw = read_topic(address, "vlo.YH") + read_topic(address, "hub.dlq")
        assert raw and all(b"Demo Victim" not in (record.value or b"") for record in raw)
        assert all(b"Not to contact the victim" not in (record.value or b"") for record in raw)

        def consumed() -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            return sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "hub_events_consumed_total"
            )

        # After the demo's four events, simulated agency traffic keeps the numbers moving.
        assert eventually(consumed, lambda total: total > 8, timeout=60) > 8

        # A worker that dies is started again; the broker, and the queues it holds, carry on.
        broker_pid = int(next(p for p in children if "tansu" in Path(f"/proc/{p}/cmdline").read_text()))
        worker_pid = next(p for p in children if p != broker_pid)
        os.kill(worker_pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            output.append(line)
            if "(restarted)" in line or line == "":
                break
        assert any(f"exited with code -{int(signal.SIGKILL)}; restarting" in line for line in output), (
            "".join(output)
        )
        children = _children_of(up.pid)
        assert broker_pid in children and worker_pid not in children and len(children) == 2
        assert eventually(read, lambda found: len(released(found)) >= 1, timeout=60)

        started = time.monotonic()
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
        assert not [pid for pid in children if _alive(pid)]
        assert not (tmp_path / "hub" / "broker.address").exists()
        # The case store holds victims and whole events encrypted at rest: the database files read as bytes
        # show no name, street, postcode, phone number, e-mail address or clinical text.
        stored = b"".join(path.read_bytes() for path in (tmp_path / "hub").glob("hub.db*"))
        assert b"WC-DEMO-1" in stored  # the references routing searches on stay usable
        for personal in (
            b"Demo Victim",
            b"Simulated Victim",
            b"Demo Street",
            b"Simulation Street",
            b"LS6 2AB",
        ):
            assert personal not in stored, personal
        for personal in (b"@example.org", b"07700 900", b"Simulated clinical", b"Simulated diagnosis"):
            assert personal not in stored, personal
    finally:
        _kill_what_is_left(up, children)


def test_queue_read_shows_each_reader_what_it_has_not_seen_and_each_notification_once(cli: Hub) -> None:
    from datetime import UTC, datetime

    from aiokafka import AIOKafkaProducer

    from connectors.avro import hub_codec
    from schemas import notification_schema

    codec = hub_codec()

    def notification(number: int) -> bytes:
        return codec.encode(
            notification_schema(),
            {
                "notification_id": f"00000000-0000-4000-8000-{number:012d}",
                "kind": "event",
                "case_ref": "01QR0000126",
                "unit_code": "YH",
                "event_type": "PrisonerReleased",
                "priority": "normal",
                "action": "record_only",
                "summary": f"Notification {number}.",
                "created_at": datetime.now(UTC),
            },
        )

    sealer = cli.keys.sealer(cli.keys.unit("YH"))  # as the worker writes them

    def put(*values: bytes) -> None:
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=cli.env["HUB_BROKER"])
            await producer.start()
            try:
                for value in values:
                    await producer.send_and_wait(
                        f"{cli.prefix}vlo.YH", sealer.seal(value), key=b"01QR0000126"
                    )
            finally:
                await producer.stop()

        asyncio.run(send())

    def read(*args: str) -> list[str]:
        result = cli.run("queue", "read", "--unit", "YH", "--timeout", "1", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["summary"] for line in result.stdout.splitlines()]

    put(notification(1), notification(2), notification(2))  # the second one twice, as after a crash
    assert read() == ["Notification 1.", "Notification 2."]  # a first run shows everything, once each
    assert read() == []  # nothing new for this reader
    put(notification(3))
    assert read() == ["Notification 3."]
    assert read("--from-beginning") == ["Notification 1.", "Notification 2.", "Notification 3."]
    assert read("--reader", "unit-case-system") == ["Notification 1.", "Notification 2.", "Notification 3."]


@contextmanager
def hub_up(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`hub up` until it says it is ready; stopped with Ctrl-C (SIGINT) afterwards, killed if it hangs."""
    up = subprocess.Popen(
        [*HUB, "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    children: list[int] = []
    try:
        output = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            output.append(up.stdout.readline())
            if output[-1].startswith("ready") or output[-1] == "":
                break
        assert output[-1].startswith("ready"), "".join(output)
        children = _children_of(up.pid)
        yield up
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    finally:
        _kill_what_is_left(up, children)


def test_hub_up_keeps_its_queues_and_each_readers_progress_across_a_restart(tmp_path: Path) -> None:
    from hub.tools.demo import demo_scenario

    env = {**os.environ, "HUB_DATA_DIR": str(tmp_path / "hub"), "HUB_WEB_PORT": str(free_port())}
    env.pop("HUB_BROKER", None)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUB, *args], cwd=ROOT, env=env, input=input, capture_output=True, text=True, timeout=60
        )

    def queue(*args: str) -> list[dict]:
        result = run("queue", "read", "--unit", "YH", "--timeout", "2", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def dead_letters() -> list[dict]:
        result = run("dlq", "list")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def in_order(notifications: list[dict]) -> list[tuple[str, str]]:
        return sorted((n["case_ref"], n["notification_id"]) for n in notifications)

    with hub_up(env):
        for source, event in demo_scenario(date.today()):
            published = run("publish", "--source", source, input=json.dumps(event) + "\n")
            assert published.returncode == 0, published.stderr
        before = eventually(
            lambda: queue("--from-beginning"),
            lambda found: any(n["event_type"] == "PrisonerReleased" for n in found),
            timeout=60,
        )
        assert queue() != []  # this reader has now read them all
        # Two dead letters; an operator purges one.
        keys = KeysDirectory(tmp_path / "hub" / "keys")
        address = (tmp_path / "hub" / "broker.address").read_text().strip()

        async def garbage() -> None:
            async with AgencyPublisher(address, signers=signers_for(keys, ["prison", "court"])) as publisher:
                await publisher.publish_raw("agency.prison.events", b"not avro", signed_by="prison")
                await publisher.publish_raw("agency.court.events", b"not avro either", signed_by="court")

        asyncio.run(garbage())
        eventually(lambda: dead_letters(), lambda found: len(found) == 2, timeout=30)
        assert run("dlq", "purge", "--source", "court", "--yes").returncode == 0
        letters = dead_letters()
        assert [letter["source"] for letter in letters] == ["prison"]

    with hub_up(env):  # a new embedded broker: its memory is empty
        after = eventually(
            lambda: queue("--from-beginning"), lambda found: len(found) >= len(before), timeout=60
        )
        assert in_order(after) == in_order(before)
        # One case's notifications keep their order (they share a partition, by case reference).
        assert [n["notification_id"] for n in after] == [n["notification_id"] for n in before]
        assert queue() == []  # nothing this reader had read is shown again
        # The same dead-letter list: the one purged stays purged.
        after_letters = eventually(dead_letters, lambda found: len(found) >= 1, timeout=30)
        assert [(d["source"], d["stage"], d["error_class"], d["reason"]) for d in after_letters] == [
            (d["source"], d["stage"], d["error_class"], d["reason"]) for d in letters
        ]


def test_a_unit_reads_its_queue_while_the_case_store_is_away_and_is_told_the_read_is_unrecorded(
    cli: Hub,
) -> None:
    unreachable = {**cli.env, "HUB_DATABASE_URL": "postgresql+psycopg://hub@127.0.0.1:1/hub"}
    result = subprocess.run(
        [*HUB, "queue", "read", "--unit", "YH", "--timeout", "1"],
        env={**os.environ, **unreachable},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "this read is not recorded: the case store is unreachable" in result.stderr


def test_a_queue_read_with_no_broker_is_a_clear_error(cli: Hub) -> None:
    result = cli.run("queue", "read", "--unit", "YH", "--timeout", "1")  # the fixture's broker, to start with
    assert result.returncode == 0, result.stderr
    gone = subprocess.run(
        [*HUB, "queue", "read", "--unit", "YH", "--timeout", "1"],
        env={**os.environ, **cli.env, "HUB_BROKER": f"127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert gone.returncode == 2 and "cannot read" in gone.stderr and "is the hub running?" in gone.stderr
    assert "Traceback" not in gone.stderr
