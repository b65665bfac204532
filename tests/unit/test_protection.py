"""The worker's edge with the broker: what it writes is sealed for whoever reads that topic, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.keys import KeysDirectory
from connectors.sealing import KeyNotHeld, sealed_key_id
from hub.cli.main import app
from hub.errors import MissingKeys
from hub.messages import InboundMessage, OutboundRecord
from hub.reference import load_units
from hub.runtime.protection import RecordProtection, embedded_keys
from hub.settings import AGENCY_SOURCES, Settings
from schemas import OUTBOUND_RECIPIENTS

UNITS = ["YH", "GM"]


def protection(tmp_path: Path) -> tuple[RecordProtection, KeysDirectory, Settings]:
    settings = Settings(broker="unused:9092", topic_prefix="p.", keys_dir=tmp_path / "keys")
    keys = KeysDirectory(tmp_path / "keys")
    keys.create_missing(list(AGENCY_SOURCES), UNITS)
    return RecordProtection(settings, UNITS, [settings.retry_topic(1)]), keys, settings


def test_each_record_is_sealed_for_the_key_that_reads_its_topic(tmp_path: Path) -> None:
    guard, keys, settings = protection(tmp_path)
    records = [
        OutboundRecord(settings.unit_topic("YH"), b"case", b"for Yorkshire"),
        OutboundRecord(settings.dead_letter_topic, b"case", b"for operations", [("signature.key_id", b"k")]),
        OutboundRecord(settings.retry_topic(1), None, b"a retry"),
    ]
    sealed = guard.seal(records)
    yh = keys.opener(keys.unit("YH"))
    operations = keys.opener(keys.operations)
    assert yh.open(sealed[0].value) == b"for Yorkshire"
    assert operations.open(sealed[1].value) == b"for operations"
    assert operations.open(sealed[2].value) == b"a retry"
    assert sealed[1].headers[0] == ("signature.key_id", b"k")  # the original headers travel as they were
    assert dict(sealed[0].headers)["hub.sealed.key_id"].decode() == sealed_key_id(sealed[0].value)


def test_a_record_for_another_agency_is_sealed_for_that_agency_alone(tmp_path: Path) -> None:
    guard, keys, settings = protection(tmp_path)
    condition = b"Not to enter the area of Headingley, Leeds"
    (sealed,) = guard.seal(
        [
            OutboundRecord(
                settings.outbound_topic("probation"), b"case", condition, [("hub.record_type", b"x")]
            )
        ]
    )
    assert sealed.value is not None and condition not in sealed.value and b"Headingley" not in sealed.value
    assert keys.opener(keys.recipient("probation")).open(sealed.value) == condition
    for other in (keys.recipient("prison"), keys.unit("YH"), keys.operations):
        with pytest.raises(KeyNotHeld):
            keys.opener(other).open(sealed.value)
    assert dict(sealed.headers)["hub.record_type"] == b"x"


def test_a_topic_with_no_known_reader_is_refused(tmp_path: Path) -> None:
    guard, _, settings = protection(tmp_path)
    with pytest.raises(MissingKeys, match="no recipient"):
        guard.seal([OutboundRecord(settings.inbound_topic("court"), None, b"x")])


def test_a_retry_record_opens_as_it_was_written(tmp_path: Path) -> None:
    guard, _, settings = protection(tmp_path)
    (sealed,) = guard.seal([OutboundRecord(settings.retry_topic(1), b"k", b"original", [("a", b"1")])])
    consumed = InboundMessage(sealed.topic, 0, 3, None, sealed.key, sealed.value, sealed.headers)
    opened = guard.open_for_operations(consumed)
    assert (opened.value, opened.headers) == (b"original", [("a", b"1")])


def test_the_worker_names_every_missing_key(tmp_path: Path) -> None:
    guard, keys, _ = protection(tmp_path)
    assert guard.missing() == []
    for path in keys.unit("GM").glob("*.pub"):
        path.unlink()
    assert guard.missing() == [f"no public key for unit GM in {keys.unit('GM')}"]
    for path in keys.recipient("parole-board").glob("*.pub"):
        path.unlink()
    assert guard.missing() == [
        f"no public key for unit GM in {keys.unit('GM')}",
        f"no public key for recipient parole-board in {keys.recipient('parole-board')}",
    ]


def test_a_fresh_embedded_data_directory_gets_every_partys_demo_keys_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub")
    made = embedded_keys(settings)
    # and the outbound recipients, operations, the hub and a data key
    assert len(made) == len(AGENCY_SOURCES) + len(load_units(settings).units) + len(OUTBOUND_RECIPIENTS) + 3
    assert embedded_keys(settings) == []  # kept, not made again


def test_no_key_is_ever_made_in_a_deployments_keys_directory(tmp_path: Path) -> None:
    provisioned = tmp_path / "provisioned"
    provisioned.mkdir()
    env = {
        "HUB_DATA_DIR": str(tmp_path / "hub"),
        "HUB_KEYS_DIR": str(provisioned),
        "HUB_BROKER": "127.0.0.1:9",
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
    }
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2
    assert "cannot start: no public key for unit" in result.output and "no hub private key" in result.output
    assert "no data key" in result.output
    assert list(provisioned.iterdir()) == []
