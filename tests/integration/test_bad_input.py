"""Everything an agency can get wrong on the wire ends in `hub.dlq` with a reason, and the stream goes on.

The worker test publishes the whole list of bad messages, then one valid slice (sentence, referral, release),
and checks each dead letter (original key, value and headers untouched; the added headers; a reason that names
the field and never the value), the metrics, and that the valid release still reaches the victim's unit.
Fast tests beside it check the same list through `ingest` alone, the CLI's refusals of bad JSON, and the
product bugs found on the way (fixed; the tests stay as guards).
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from fastavro import schemaless_writer

from connectors.avro import SINGLE_OBJECT_MARKER, hub_codec
from connectors.publisher import AgencyPublisher, event_from_json
from hub.messages import InboundMessage
from hub.pipeline.ingest import PERMANENT_FAILURES, ingest
from schemas import RecordSchema, build_record_schema, event_schemas
from tests.data_keys import data_keys_in
from tests.integration.conftest import Hub
from tests.integration.test_walking_skeleton import referral, release, sentence
from tests.integration.waiting import counter, eventually, metrics_text, read_topic

MAX_BYTES = 4096  # HUB_MAX_MESSAGE_BYTES for the worker of this module
NOW = datetime.now(UTC)
TODAY = NOW.date()
CODEC = hub_codec()

# Values that are personal data or the offending value itself: none may appear in any hub.error.message.
VICTIM_NAME = "Priya Confidential"
BAD_NOMS = "NOT-A-NOMS"
FUTURE_DATE = TODAY + timedelta(days=30)
OVERSIZED_TEXT = "Exclusion zone around Flat 9 Secret Gardens"
SECRETS = (VICTIM_NAME, "Priya", "Confidential", BAD_NOMS, FUTURE_DATE.isoformat(), OVERSIZED_TEXT, "Secret")


# ----------------------------------------------------------------------------------------------------------
# Building events, valid and broken
# ----------------------------------------------------------------------------------------------------------


def record(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A valid event built as `hub publish` builds it, as the plain dict fastavro writes."""
    return event_from_json(data, source, datetime.now(UTC)).model_dump()


def encode(event_type: str, data: dict[str, Any]) -> bytes:
    """Single-object Avro with the hub's own schema, bypassing the publisher's validation."""
    return CODEC.encode(event_schemas()[event_type], data)


def retyped(event_type: str, path: tuple[str, ...], new_type: Any) -> RecordSchema:
    """The hub's schema for `event_type` with the field at `path` given another type (a writer the hub lacks)."""
    definition = copy.deepcopy(event_schemas()[event_type].definition)
    node = definition
    for name in path[:-1]:
        node = next(f for f in node["fields"] if f["name"] == name)["type"]
        if isinstance(node, list):  # a union: the record branch
            node = next(branch for branch in node if isinstance(branch, dict))
    next(f for f in node["fields"] if f["name"] == path[-1])["type"] = new_type
    return build_record_schema(definition, event_schemas()[event_type].folder, {})


def smuggled(event_type: str, path: tuple[str, ...], wire_type: Any, data: dict[str, Any]) -> bytes:
    """A body written with `wire_type` at `path` but framed with the hub's fingerprint.

    `bytes` and `string` share a wire format, as do `int` and an enum's index, so this writes exactly what a
    broken agency encoder could: invalid UTF-8 in a string, or an enum index the schema has no symbol for.
    """
    writer = retyped(event_type, path, wire_type)
    body = io.BytesIO()
    schemaless_writer(body, writer.parsed, data)
    return SINGLE_OBJECT_MARKER + event_schemas()[event_type].fingerprint + body.getvalue()


def valid_release(noms: str = "A1234BC") -> dict[str, Any]:
    return record(release(noms), "prison")


def with_subject(data: dict[str, Any], **subject: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["envelope"]["subject"].update(subject)
    return data


def with_source(data: dict[str, Any], agency: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["envelope"]["source"]["agency"] = agency
    return data


@dataclass(frozen=True)
class Bad:
    """One bad message and what its dead letter must say."""

    name: str
    source: str  # the agency topic it is published on
    value: bytes
    error_class: str
    reason: str  # must appear in hub.error.message
    path: str | None = None  # the field path hub.error.message must name, where a field is involved
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def bad_messages() -> list[Bad]:
    """The issue's list: truncated, wrong marker, unknown fingerprint, wrong types, missing fields, unknown
    enum symbols, oversized, invalid UTF-8, forged source, future dates, bad identifiers."""
    released = valid_release("A1234BC")
    payload = encode("PrisonerReleased", released)
    body = payload[10:]
    sentenced = record(sentence("01BI0000126", "B2345CD"), "court")
    referred = record(referral("01BI0000126", "WC-BI-1", VICTIM_NAME, "LS6 2AB"), "witness-care")

    new_date_type = retyped("PrisonerReleased", ("release_date",), "string")
    changed_type = io.BytesIO()
    schemaless_writer(changed_type, new_date_type.parsed, {**released, "release_date": TODAY.isoformat()})

    broken_name = copy.deepcopy(referred)
    broken_name["victim"]["name"] = b"Priya \xff\xfe Confidential"

    oversized = copy.deepcopy(released)
    oversized["licence_conditions"] = [
        {
            "code": None,
            "text": f"{OVERSIZED_TEXT} {i:03d}",
            "victim_related": True,
            "requested_by_victim": False,
        }
        for i in range(120)
    ]
    future = copy.deepcopy(sentenced)
    future["sentence_date"] = FUTURE_DATE
    mislabelled = copy.deepcopy(released)
    mislabelled["envelope"]["event_type"] = "VictimReferred"

    undecodable = "UndecodableMessage"
    invalid = "InvalidEvent"
    agency_headers = [
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("raw", b"\xff\x00"),
    ]
    cases = [
        # truncated
        Bad("empty", "prison", b"", undecodable, "shorter than the single-object header"),
        Bad("cut-in-header", "prison", payload[:7], undecodable, "shorter than the single-object header"),
        Bad("header-only", "prison", payload[:10], undecodable, "truncated or corrupt"),
        Bad("cut-in-body", "prison", payload[: len(payload) // 2], undecodable, "truncated or corrupt"),
        Bad("cut-last-byte", "prison", payload[:-1], undecodable, "truncated or corrupt"),
        Bad(
            "trailing-bytes",
            "prison",
            payload + b"\x00\x02",
            undecodable,
            "unexpected bytes after the record",
        ),
        # wrong marker bytes
        Bad("confluent-framing", "prison", b"\x00\x00\x00\x00\x07" + body, undecodable, "marker C3 01"),
        Bad("second-marker-byte", "prison", b"\xc3\x02" + payload[2:], undecodable, "marker C3 01"),
        Bad("json-text", "prison", json.dumps(release("A1234BC")).encode(), undecodable, "marker C3 01"),
        # unknown fingerprints, including a changed field type (a writer schema the hub does not know)
        Bad(
            "unknown-fingerprint",
            "prison",
            b"\xc3\x01" + b"\xab" * 8 + body,
            undecodable,
            "unknown writer schema fingerprint",
        ),
        Bad(
            "changed-field-type",
            "prison",
            SINGLE_OBJECT_MARKER + new_date_type.fingerprint + changed_type.getvalue(),
            undecodable,
            f"unknown writer schema fingerprint {new_date_type.fingerprint.hex()}",
        ),
        # missing required fields
        Bad(
            "missing-noms",
            "prison",
            encode("PrisonerReleased", with_subject(released, noms_number=None)),
            invalid,
            "is required for this event",
            "envelope.subject.noms_number",
        ),
        Bad(
            "missing-case-ref",
            "court",
            encode("SentenceImposed", with_subject(sentenced, case_ref=None)),
            invalid,
            "is required for this event",
            "envelope.subject.case_ref",
        ),
        # unknown enum symbol: an index past the last symbol of release_type
        Bad(
            "enum-index-out-of-range",
            "prison",
            smuggled("PrisonerReleased", ("release_type",), "int", {**released, "release_type": 20}),
            undecodable,
            "PrisonerReleased",
        ),
        # oversized
        Bad(
            "oversized",
            "prison",
            encode("PrisonerReleased", oversized),
            "Rejected",
            f"over the {MAX_BYTES}-byte limit",
        ),
        # invalid UTF-8 inside a string field (the victim's name)
        Bad(
            "invalid-utf8",
            "witness-care",
            smuggled("VictimReferred", ("victim", "name"), "bytes", broken_name),
            undecodable,
            "not valid UTF-8",
        ),
        # forged source: a valid court event on the prison channel
        Bad(
            "forged-source",
            "prison",
            encode("SentenceImposed", sentenced),
            invalid,
            "claims another agency than the prison channel",
            "envelope.source.agency",
        ),
        Bad(
            "unknown-agency",
            "prison",
            encode("PrisonerReleased", with_source(released, "police")),
            invalid,
            "is not a known agency code",
            "envelope.source.agency",
        ),
        Bad(
            "envelope-event-type",
            "prison",
            encode("PrisonerReleased", mislabelled),
            invalid,
            "must be PrisonerReleased",
            "envelope.event_type",
        ),
        # a date that cannot be in the future
        Bad(
            "future-sentence-date",
            "court",
            encode("SentenceImposed", future),
            invalid,
            "cannot be in the future",
            "sentence_date",
        ),
        # bad identifier format
        Bad(
            "bad-noms",
            "prison",
            encode("PrisonerReleased", with_subject(released, noms_number=BAD_NOMS)),
            invalid,
            "must be a letter, 4 digits and 2 letters",
            "envelope.subject.noms_number",
        ),
    ]
    keyed = []
    for number, case in enumerate(cases):
        # Every message has its own key, except one with none (a dead letter keeps "no key" too); two carry
        # agency headers, which the dead letter must keep first and untouched.
        key = None if case.name == "second-marker-byte" else f"bad-{number:02d}-{case.name}".encode()
        headers = agency_headers if case.name in ("unknown-fingerprint", "bad-noms") else []
        keyed.append(replace(case, key=key, headers=headers))
    return keyed


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------


def scrape(hub: Hub) -> str:
    return metrics_text(hub.web)


def consumed(text: str) -> float:
    return counter(text, "hub_events_consumed_total")


# ----------------------------------------------------------------------------------------------------------
# The worker test
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def hub(hub: Hub) -> Hub:
    """This module's hub refuses payloads over MAX_BYTES and holds no release for correction (set before the
    `worker` fixture starts the worker)."""
    hub.env["HUB_MAX_MESSAGE_BYTES"] = str(MAX_BYTES)
    hub.env["HUB_RELEASE_HOLD_SECONDS"] = "0"
    return hub


async def _send_raw(hub: Hub, cases: list[Bad]) -> dict[str, tuple[int, int]]:
    """Publish bytes as they are (with headers), signed by the agency whose topic they go to (what is wrong is
    the content, not who sent it), returning each case's (partition, offset)."""
    broker, prefix = hub.env["HUB_BROKER"], hub.prefix
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        where = {}
        for case in cases:
            topic = f"{prefix}agency.{case.source}.events"
            signed = hub.signer(case.source).headers(topic, case.key, case.value)
            metadata = await producer.send_and_wait(
                topic, case.value, key=case.key, headers=[*case.headers, *signed]
            )
            where[case.name] = (metadata.partition, metadata.offset)
        return where
    finally:
        await producer.stop()


def _publish_slice(hub: Hub, case_ref: str, noms: str, name: str, postcode: str, unit: str) -> None:
    async def publish(*events: tuple[str, dict]) -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            for source, data in events:
                await publisher.publish(
                    f"{hub.prefix}agency.{source}.events", [event_from_json(data, source, datetime.now(UTC))]
                )

    asyncio.run(
        publish(
            ("court", sentence(case_ref, noms)),
            ("witness-care", referral(case_ref, f"WC-{case_ref}", name, postcode)),
        )
    )
    # Agencies publish on separate topics: wait until the referral is applied (its first-contact task is on the
    # queue) so the release cannot be consumed first (see README, Known limitations).
    eventually(
        lambda: [n for n in hub.read_queue(unit, timeout=1) if n["case_ref"] == case_ref],
        lambda found: len(found) >= 1,
        timeout=30,
    )
    asyncio.run(publish(("prison", release(noms))))


def test_every_kind_of_bad_input_is_dead_lettered_and_the_stream_goes_on(hub: Hub, worker) -> None:
    broker = hub.env["HUB_BROKER"]
    cases = bad_messages()
    started = time.monotonic()
    where = asyncio.run(_send_raw(hub, cases))
    _publish_slice(hub, "01BI0000999", "Z9876YX", "Sam Valid", "LS6 2AB", "YH")

    dead = eventually(
        lambda: read_topic(broker, f"{hub.prefix}hub.dlq", opener=hub.opener()),
        lambda found: len(found) >= len(cases),
        timeout=30,
    )
    releases = eventually(
        lambda: [n for n in hub.read_queue("YH", timeout=1) if n["event_type"] == "PrisonerReleased"],
        lambda found: len(found) >= 1,
        timeout=30,
    )
    elapsed = time.monotonic() - started

    # The valid release published after all of it still reaches the victim's unit, once.
    assert [(n["case_ref"], n["person_ref"]) for n in releases] == [("01BI0000999", "WC-01BI0000999")]
    assert worker.poll() is None, "the worker died"

    # One dead letter per bad message, each keeping the original key, value and headers untouched.
    assert len(dead) == len(cases), [dict(d.headers).get("hub.error.message") for d in dead]
    by_origin = {}
    for letter in dead:
        headers = dict(letter.headers)
        origin = (
            headers["hub.original.topic"].decode(),
            int(headers["hub.original.partition"]),
            int(headers["hub.original.offset"]),
        )
        by_origin[origin] = letter
    problems = []
    for case in cases:
        partition, offset = where[case.name]
        letter = by_origin.get((f"{hub.prefix}agency.{case.source}.events", partition, offset))
        if letter is None:
            problems.append(f"{case.name}: no dead letter points at its topic, partition and offset")
            continue
        headers = dict(letter.headers)
        message = headers["hub.error.message"].decode()
        checks = {
            "value untouched": letter.value == case.value,
            "key untouched": letter.key == case.key,
            "agency headers kept first": list(letter.headers)[: len(case.headers)] == case.headers,
            "stage ingest": headers["hub.error.stage"] == b"ingest",
            f"class {case.error_class}": headers["hub.error.class"] == case.error_class.encode(),
            f"reason has {case.reason!r}": case.reason in message,
            f"reason names {case.path}": case.path is None or case.path in message,
            "no value in reason": not any(secret in message for secret in SECRETS),
            "timestamp": headers["hub.original.timestamp"].isdigit(),
            "attempts": headers["hub.attempts"] == b"1",
            "failure times": all(
                datetime.fromisoformat(headers[h].decode()).tzinfo is not None
                for h in ("hub.first_failure_at", "hub.last_failure_at")
            ),
        }
        problems += [f"{case.name}: {check} (message: {message!r})" for check, ok in checks.items() if not ok]
    assert problems == []

    # The metrics count every message once, by source and outcome, and each dead letter by stage and class.
    text = eventually(lambda: scrape(hub), lambda t: consumed(t) >= len(cases) + 3, timeout=10)
    # The referral may be parked for a moment if it is consumed before its sentence (another topic).
    valid = [counter(text, "hub_events_consumed_total", outcome=o) for o in ("accepted", "parked")]
    assert sum(valid) == 3
    for source in {case.source for case in cases}:
        expected = sum(case.source == source for case in cases)
        assert counter(text, "hub_events_consumed_total", source=source, outcome="dead_letter") == expected
    for error_class in {case.error_class for case in cases}:
        expected = sum(case.error_class == error_class for case in cases)
        assert counter(text, "hub_dead_letters_total", stage="ingest", error_class=error_class) == expected
    assert counter(text, "hub_dead_letters_total") == len(cases)
    print(f"\n{len(cases)} bad messages dead-lettered and the slice routed in {elapsed:.1f}s")


# ----------------------------------------------------------------------------------------------------------
# Fast tests: no worker
# ----------------------------------------------------------------------------------------------------------


def _ingest(value: bytes, source: str) -> Any:
    message = InboundMessage(f"agency.{source}.events", 0, 0, None, None, value)
    return ingest(message, source, CODEC, MAX_BYTES, TODAY)


@pytest.mark.parametrize("case", bad_messages(), ids=lambda case: case.name)
def test_ingest_refuses_each_bad_message_with_its_reason(case: Bad) -> None:
    """The same list as the worker test, through `ingest` alone: quick to run and to read when one breaks."""
    with pytest.raises(PERMANENT_FAILURES) as refused:
        _ingest(case.value, case.source)
    message = str(refused.value)
    assert type(refused.value).__name__ == case.error_class
    assert case.reason in message
    assert case.path is None or case.path in message
    assert not any(secret in message for secret in SECRETS), message


def test_the_valid_events_the_bad_ones_are_made_from_are_accepted() -> None:
    """So each bad message above is refused for its one defect, not for something else about it."""
    sentenced = record(sentence("01BI0000126", "B2345CD"), "court")
    referred = record(referral("01BI0000126", "WC-BI-1", VICTIM_NAME, "LS6 2AB"), "witness-care")
    assert _ingest(encode("PrisonerReleased", valid_release()), "prison").event_type == "PrisonerReleased"
    assert _ingest(encode("SentenceImposed", sentenced), "court").event_type == "SentenceImposed"
    assert _ingest(encode("VictimReferred", referred), "witness-care").event_type == "VictimReferred"
    same_wire = smuggled("PrisonerReleased", ("release_type",), "int", {**valid_release(), "release_type": 0})
    assert _ingest(same_wire, "prison").event.release_type == "automatic"


def _wrong(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is _MISSING:
        del node[last]
    else:
        node[last] = value
    return data


_MISSING = object()


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        (
            "court",
            [
                (
                    _wrong(sentence("01BC0000126", "A1234BC"), "custodial_term_months", "thirty"),
                    "custodial_term_months: Input should be a valid integer",
                    "thirty",
                ),
                (
                    _wrong(sentence("01BC0000126", "A1234BC"), "disposal", "banishment"),
                    "disposal: Input should be 'custody'",
                    "banishment",
                ),
                (
                    _wrong(sentence("01BC0000126", "A1234BC"), "offender.name", 12345),
                    "offender.name: Input should be a valid string",
                    "12345",
                ),
                (
                    _wrong(sentence("01BC0000126", "A1234BC"), "sentence_date", FUTURE_DATE.isoformat()),
                    "sentence_date: cannot be in the future",
                    FUTURE_DATE.isoformat(),
                ),
                (
                    _wrong(sentence("01BC0000126", "A1234BC"), "case_ref", _MISSING),
                    "envelope.subject.case_ref: is required for this event",
                    None,
                ),
            ],
        ),
        (
            "prison",
            [
                (
                    _wrong(release("A1234BC"), "release_type", "escaped_custody"),
                    "release_type: Input should be 'automatic'",
                    "escaped_custody",
                ),
                (
                    _wrong(release("A1234BC"), "release_date", "next tuesday"),
                    "release_date: Input should be a valid date",
                    "next tuesday",
                ),
                (
                    _wrong(release("A1234BC"), "noms_number", _MISSING),
                    "envelope.subject.noms_number: is required for this event",
                    None,
                ),
                (
                    _wrong(release("A1234BC"), "noms_number", BAD_NOMS),
                    "envelope.subject.noms_number: must be a letter",
                    BAD_NOMS,
                ),
            ],
        ),
        (
            "witness-care",
            [
                (
                    _wrong(referral("01BC0000126", "WC-1", VICTIM_NAME, "LS6 2AB"), "victim.name", _MISSING),
                    "victim.name: Field required",
                    None,
                ),
                (
                    _wrong(
                        referral("01BC0000126", "WC-1", VICTIM_NAME, "LS6 2AB"),
                        "victim.relationship",
                        "neighbour",
                    ),
                    "victim.relationship: Input should be 'victim'",
                    "neighbour",
                ),
                (
                    _wrong(
                        referral("01BC0000126", "WC-1", VICTIM_NAME, "LS6 2AB"),
                        "victim.address.postcode",
                        1234,
                    ),
                    "victim.address.postcode: Input should be a valid string",
                    VICTIM_NAME,
                ),
            ],
        ),
    ],
    ids=["court", "prison", "witness-care"],
)
def test_publish_refuses_wrong_types_and_unknown_symbols_naming_the_field(
    cli: Hub, source: str, lines: list[tuple[dict, str, str | None]]
) -> None:
    result = cli.publish(source, [data for data, _, _ in lines])

    assert result.returncode == 1, result.stderr
    for number, (_, reason, value) in enumerate(lines, start=1):
        assert f"line {number}: {reason}" in result.stderr
        assert value is None or value not in result.stderr
    assert VICTIM_NAME not in result.stderr
    assert "nothing published" in result.stderr
    assert read_topic(cli.env["HUB_BROKER"], f"{cli.prefix}agency.{source}.events", timeout=2) == []


# ----------------------------------------------------------------------------------------------------------
# Found by these tests and fixed; each stays as a guard
# ----------------------------------------------------------------------------------------------------------


def test_an_enum_index_past_the_symbols_is_refused_naming_the_field() -> None:
    value = smuggled("PrisonerReleased", ("release_type",), "int", {**valid_release(), "release_type": 20})
    with pytest.raises(PERMANENT_FAILURES, match="release_type"):
        _ingest(value, "prison")


def test_invalid_utf8_is_refused_naming_the_field() -> None:
    broken = record(referral("01BI0000126", "WC-BI-1", VICTIM_NAME, "LS6 2AB"), "witness-care")
    broken["victim"]["name"] = b"Priya \xff\xfe Confidential"
    value = smuggled("VictimReferred", ("victim", "name"), "bytes", broken)
    with pytest.raises(PERMANENT_FAILURES, match=r"victim\.name"):
        _ingest(value, "witness-care")


def _through_the_pipeline(database_url: str, batches: list[list[tuple[str, bytes]]]) -> list[Any]:
    """The worker's own pipeline on a real database, no broker: each batch of (source, value); the dead letters."""
    from hub.pipeline import Pipeline
    from hub.reference import load_units
    from hub.settings import Settings
    from hub.store.engine import make_engine

    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="x.")
    keys_directory = tempfile.TemporaryDirectory()
    engine = make_engine(database_url, data_keys_in(Path(keys_directory.name)))
    pipeline = Pipeline(settings, engine, CODEC, load_units(settings))
    dead = []
    try:
        for batch in batches:
            messages = [
                InboundMessage(f"x.agency.{source}.events", 0, offset, None, b"k", value)
                for offset, (source, value) in enumerate(batch)
            ]
            dead += pipeline.process(messages).dead_letters
    finally:
        engine.dispose()
        keys_directory.cleanup()
    return dead


@pytest.mark.parametrize(
    "name", ["Priya\x00Confidential", "Priya Confidential " * 12], ids=["nul", "overlong"]
)
def test_a_victim_name_the_store_cannot_hold_is_refused_at_ingest_on_every_database(
    database_url: str, name: str
) -> None:
    referred = record(referral("01BI0000126", "WC-BI-1", "Placeholder", "LS6 2AB"), "witness-care")
    referred["victim"]["name"] = name
    sentenced = record(sentence("01BI0000126", "B2345CD"), "court")

    dead = _through_the_pipeline(
        database_url,
        [
            [
                ("court", encode("SentenceImposed", sentenced)),
                ("witness-care", encode("VictimReferred", referred)),
            ]
        ],
    )

    reasons = [dict(letter.headers)["hub.error.message"].decode() for letter in dead]
    assert not [reason for reason in reasons if "Confidential" in reason], (
        "the victim's name is in the reason"
    )
    assert len(dead) == 1, "the same event must have the same outcome on every database"
    assert dict(dead[0].headers)["hub.error.stage"] == b"ingest"
    assert "victim.name" in reasons[0]


def test_identifiers_of_two_offenders_are_dead_lettered_without_their_values(database_url: str) -> None:
    def sentenced(case_ref: str, noms: str, pnc: str, **subject: str) -> tuple[str, bytes]:
        data = {**sentence(case_ref, noms), **subject}
        data["offender"] = {**data["offender"], "pnc": pnc}
        return "court", encode("SentenceImposed", record(data, "court"))

    dead = _through_the_pipeline(
        database_url,
        [
            [sentenced("01CF0000001", "A1111AA", "2019/0000001A")],
            [sentenced("01CF0000002", "B2222BB", "2019/0000002B", crn="X123456")],
            # A1111AA is the first offender's, X123456 the second's
            [sentenced("01CF0000003", "A1111AA", "2019/0000001A", crn="X123456")],
        ],
    )

    assert len(dead) == 1
    reason = dict(dead[0].headers)["hub.error.message"].decode()
    assert not [value for value in ("X123456", "A1111AA", "2019/000000") if value in reason], reason
    assert "envelope.subject" in reason


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
def test_a_null_value_is_dead_lettered_as_null(hub: Hub, worker) -> None:
    broker = hub.env["HUB_BROKER"]

    async def send_null() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            topic = f"{hub.prefix}agency.prison.events"
            signed = hub.signer("prison").headers(topic, b"tombstone", None)
            await producer.send_and_wait(topic, None, key=b"tombstone", headers=signed)
        finally:
            await producer.stop()

    asyncio.run(send_null())
    dead = eventually(
        lambda: read_topic(broker, f"{hub.prefix}hub.dlq", opener=hub.opener()),
        lambda found: len(found) >= 1,
        timeout=20,
    )

    assert worker.poll() is None
    assert [(d.key, dict(d.headers)["hub.error.stage"]) for d in dead] == [(b"tombstone", b"ingest")]
    assert dead[0].value is None
