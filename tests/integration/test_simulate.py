"""`hub simulate` as an operator runs it, and the simulated traffic through the hub's real pipeline."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from connectors.avro import SINGLE_OBJECT_MARKER, hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.runtime.processes import free_port
from hub.settings import Settings
from hub.store.engine import make_engine
from hub.tools.traffic import Traffic
from schemas import AGENCIES, event_schemas
from schemas.validation import InvalidEvent
from tests.data_keys import data_keys_in
from tests.integration.conftest import HUB, ROOT, Hub, with_keys
from tests.integration.waiting import eventually, read_topic

ROW = re.compile(r"^(?P<source>[a-z-]+)\s+(?P<events>\d+)\s+(?P<urgent>\d+)\s+(?P<invalid>\d+)$")


def summary_table(stdout: str) -> dict[str, tuple[int, int, int]]:
    rows = {}
    for line in stdout.splitlines():
        if match := ROW.match(line.strip()):
            rows[match["source"]] = (int(match["events"]), int(match["urgent"]), int(match["invalid"]))
    return rows


def invalid(event) -> bool:
    try:
        event_from_json(event.fields, event.source, datetime.now(UTC))
    except InvalidEvent:
        return True
    return False


def on_topics(hub: Hub) -> dict[str, list]:
    """Per source, what is on its events topic and its urgent lane."""
    broker = hub.env["HUB_BROKER"]
    return {
        source: [
            *read_topic(broker, f"{hub.prefix}agency.{source}.events"),
            *read_topic(broker, f"{hub.prefix}agency.{source}.urgent"),
        ]
        for source in AGENCIES
    }


def test_simulate_sends_the_seeds_stream_at_the_rate_and_summarises_it(cli: Hub) -> None:
    result = cli.run(
        "simulate", "--rate", "50", "--duration", "3", "--seed", "7", "--first-case", "70000",
        "--invalid-share", "0.1",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    expected = list(islice(Traffic(seed=7, first_case=70000, invalid_share=0.1), 150))
    table = summary_table(result.stdout)
    assert table["total"] == (150, sum(e.urgent for e in expected), sum(invalid(e) for e in expected))
    by_source = Counter(e.source for e in expected)
    assert {source: table[source][0] for source in AGENCIES} == {s: by_source[s] for s in AGENCIES}
    assert "errors 0" in result.stdout
    elapsed = float(re.search(r"in ([\d.]+) s", result.stdout)[1])
    assert elapsed >= 2.9  # paced: 150 events at 50 a second cannot all go at once
    assert "--seed 7 --first-case 70000" in result.stdout

    topics = on_topics(cli)
    assert {source: len(records) for source, records in topics.items()} == {s: by_source[s] for s in AGENCIES}
    codec = hub_codec()
    decoded = Counter()
    for source, records in topics.items():
        for record in records:
            assert record.value[:2] == SINGLE_OBJECT_MARKER
            decoded[(source, codec.decode(record.value).schema.name)] += 1
    assert decoded == Counter((e.source, e.fields["event_type"]) for e in expected)


def test_simulate_stops_on_ctrl_c_with_the_summary_of_what_it_sent(cli: Hub) -> None:
    process = subprocess.Popen(
        [*HUB, "simulate", "--rate", "20"],
        cwd=ROOT,
        env={**os.environ, **cli.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        court = f"{cli.prefix}agency.court.events"
        assert eventually(lambda: read_topic(cli.env["HUB_BROKER"], court, timeout=2), bool, timeout=60)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)

    assert process.returncode == 0, stderr
    assert "stopped early (interrupted)" in stdout
    table = summary_table(stdout)
    assert table["total"][0] > 0
    assert table["total"][0] == sum(len(records) for records in on_topics(cli).values())
    assert "Traceback" not in stderr


def test_simulate_without_a_reachable_broker_says_so_and_fails(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_BROKER": f"127.0.0.1:{free_port()}", "HUB_DATA_DIR": str(tmp_path)}
    with_keys(tmp_path / "keys")  # signing keys for every agency: what is missing here is the broker
    result = subprocess.run(
        [*HUB, "simulate", "--rate", "10", "--duration", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "cannot reach the broker at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_hub_takes_every_simulated_event_and_dead_letters_only_the_invalid_ones(tmp_path: Path) -> None:
    """The stream hangs together: follow-ups find their cases (nothing is left parked), nothing valid fails."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    settings = Settings(broker="unused:9092", database_url=url, topic_prefix="sim.")
    engine = make_engine(url, data_keys_in(tmp_path / "keys"))
    now = datetime.now(UTC)
    pipeline = Pipeline(settings, engine, hub_codec(), load_units(settings), clock=lambda: now)
    codec = hub_codec()
    events = list(islice(Traffic(seed=11, today=now.date(), invalid_share=0.05), 600))
    messages = []
    for offset, simulated in enumerate(events):
        published = now - timedelta(seconds=len(events) - offset)  # in stream order
        event = event_from_json(simulated.fields, simulated.source, published, validate=False)
        value = codec.encode(event_schemas()[simulated.fields["event_type"]], event.model_dump())
        messages.append(
            InboundMessage(settings.inbound_topic(simulated.source), 0, offset, None, None, value)
        )
    try:
        dead, notified = 0, 0
        for start in range(0, len(messages), 100):
            result = pipeline.process(messages[start : start + 100])
            assert result.transient == []
            dead += len(result.dead_letters)
            notified += len(result.notifications)
        assert dead == sum(invalid(e) for e in events) > 0
        assert list(pipeline.parked_events(0)) == []
        assert notified > 100
    finally:
        engine.dispose()
