"""Fuzzing the ingest path: ten thousand hostile messages through one real worker, and the valid ones still go.

Hypothesis draws the material (a seed and pools of awkward strings, numbers, dates and identifiers); the
messages are expanded from it deterministically: random bytes of random lengths, random bodies behind a real
header, valid events mangled byte by byte (bit flips, truncation, insertion, deletion, splicing) and valid
events with fields changed at random. One hundred valid slices (sentence, referral, release) are interleaved
with them. A mutated message may still decode into a valid event, so the check is conservation (every message
is counted once, accepted or dead-lettered, and every dead letter is on `hub.dlq` with its reason), not "every
mutated message is dead".

Hypothesis cannot draw ten thousand messages in one example (an example is limited to 8,192 choices), and a
worker cannot be restarted per example, so the drawing happens once, outside the worker test, with
`derandomize=True`: the same messages every run.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import cache
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from connectors.avro import SINGLE_OBJECT_MARKER, AvroCodec, hub_codec
from connectors.publisher import event_from_json, message_key
from hub.messages import InboundMessage
from hub.pipeline.ingest import PERMANENT_FAILURES, ingest
from hub.settings import AGENCY_SOURCES
from schemas import SCHEMA_DIR, event_schemas, notification_schema
from schemas.validation import InvalidEvent, allowed_sources
from tests.integration.conftest import Hub
from tests.integration.test_bad_input import consumed, counter, scrape
from tests.integration.test_walking_skeleton import allocation, referral, release, sentence
from tests.integration.waiting import eventually, read_topic

NOISE = 10_000  # hostile messages
SLICES = 100  # valid sentence + referral + release, each giving one release notification
UNIT_OF_POSTCODE = {"LS6 2AB": "YH", "M1 1AE": "GM", "NE1 4ST": "NE"}
CODEC = hub_codec()
FUZZ_VICTIM = "Fuzzy Victimname"  # the fuzz bases' victim: never in a reason


@dataclass(frozen=True)
class Outgoing:
    source: str  # the agency topic it goes to
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    kind: str = "noise"


# ----------------------------------------------------------------------------------------------------------
# Valid events to start from
# ----------------------------------------------------------------------------------------------------------


# Fixed identities and times for the material the fuzzer mangles, so a day's runs mangle the same bytes.
BASE_MOMENT = datetime.combine(date.today() - timedelta(days=1), dt_time(12), UTC)
BASE_IDS = uuid.UUID("6f1c0c52-7a43-4f7e-9a0e-5a1f0f2c9b11")


def _record(data: dict[str, Any], source: str) -> dict[str, Any]:
    data = {**data, "event_id": str(uuid.uuid5(BASE_IDS, json.dumps(data, sort_keys=True)))}
    return event_from_json(data, source, BASE_MOMENT).model_dump()


@cache
def bases() -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """(source, event type, record): the four routed events about fuzz-only offenders, and every schema's
    example event that is valid today (those mostly stop at stage "route" until their handlers exist)."""
    found = []
    for n, postcode in enumerate(UNIT_OF_POSTCODE):
        case_ref, noms = f"FZB000{n}", f"F123{n}FZ"
        found += [
            ("court", "SentenceImposed", _record(sentenced(case_ref, noms, f"2018/000000{n}F"), "court")),
            (
                "witness-care",
                "VictimReferred",
                _record(referral(case_ref, f"FZ-{n}", FUZZ_VICTIM, postcode), "witness-care"),
            ),
            (
                "vcs",
                "CaseAllocated",
                _record(allocation(case_ref, UNIT_OF_POSTCODE[postcode], f"vlo-fz-{n}"), "vcs"),
            ),
            ("prison", "PrisonerReleased", _record(release(noms), "prison")),
        ]
    for path in sorted(SCHEMA_DIR.glob("*/*.example.json")):
        example = json.loads(path.read_text(encoding="utf-8"))
        event_type = example["event_type"]
        source = allowed_sources(event_schemas()[event_type])[0]
        for name in ("event_id", "occurred_at", "published_at"):
            example.pop(name, None)
        try:
            found.append((source, event_type, _record(example, source)))
        except InvalidEvent:
            continue  # an example whose dates have become invalid with time: not a base
    return tuple(found)


def sentenced(case_ref: str, noms: str, pnc: str) -> dict[str, Any]:
    """The skeleton's sentence with an offender of their own: its PNC is shared, which would link every
    offender sentenced with it into one (the hub links records on any identifier)."""
    data = sentence(case_ref, noms)
    data["offender"]["pnc"] = pnc
    return data


def _encode(event_type: str, record: dict[str, Any]) -> bytes:
    return CODEC.encode(event_schemas()[event_type], record)


def _enum_symbols() -> list[str]:
    symbols: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                symbols.update(node["symbols"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in event_schemas().values():
        walk(schema.definition)
    return sorted(symbols)


# ----------------------------------------------------------------------------------------------------------
# Drawing the material with Hypothesis, expanding it into messages
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    seed: int
    texts: list[str]
    identifiers: list[str]
    ints: list[int]
    moments: list[datetime]
    snippets: list[bytes]


def _draw_material() -> Material:
    drawn: list[Material] = []

    # The first example Hypothesis tries is the simplest (empty strings, zeros); three examples give varied
    # pools, which are merged. derandomize: the same material on every run and machine.
    @settings(
        max_examples=3,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        drawn.append(
            Material(
                seed=data.draw(st.integers(0, 2**63)),
                texts=data.draw(st.lists(st.text(max_size=24), min_size=60, max_size=60)),
                identifiers=data.draw(
                    st.lists(
                        st.one_of(
                            st.from_regex(r"[A-R][0-9]{4}[A-Z]{2}", fullmatch=True),  # well-formed NOMS
                            st.from_regex(r"[A-R][0-9]{6}", fullmatch=True),  # CRN
                            st.from_regex(r"FZ[A-Z0-9/-]{1,12}", fullmatch=True),  # case references
                        ),
                        min_size=30,
                        max_size=30,
                    )
                ),
                ints=data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=30, max_size=30)),
                moments=data.draw(st.lists(st.datetimes(timezones=st.just(UTC)), min_size=20, max_size=20)),
                snippets=data.draw(st.lists(st.binary(min_size=1, max_size=12), min_size=20, max_size=20)),
            )
        )

    draw()
    last = drawn[-1]
    return Material(
        seed=last.seed,
        texts=[t for m in drawn for t in m.texts],
        identifiers=[i for m in drawn for i in m.identifiers],
        ints=[i for m in drawn for i in m.ints],
        moments=[t for m in drawn for t in m.moments],
        snippets=[s for m in drawn for s in m.snippets],
    )


def _leaf_paths(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, (*path, key))]
    if isinstance(node, list):
        return [path] + [p for i, value in enumerate(node) for p in _leaf_paths(value, (*path, i))]
    return [path]


def _set(record: dict[str, Any], path: tuple, value: Any) -> None:
    node: Any = record
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(record: dict[str, Any], path: tuple) -> Any:
    node: Any = record
    for part in path:
        node = node[part]
    return node


class Fuzzer:
    def __init__(self, material: Material) -> None:
        self.m = material
        self.rng = random.Random(material.seed)
        self.bases = bases()
        self.payloads = [(source, _encode(t, r), message_key_of(r)) for source, t, r in self.bases]
        self.symbols = _enum_symbols()
        self.fingerprints = [schema.fingerprint for schema in event_schemas().values()]

    def source(self, own: str) -> str:
        return own if self.rng.random() < 0.85 else self.rng.choice(AGENCY_SOURCES)

    def key(self, own: bytes | None) -> bytes | None:
        roll = self.rng.random()
        return own if roll < 0.6 else None if roll < 0.8 else self.rng.randbytes(self.rng.randint(0, 20))

    def headers(self) -> tuple[tuple[str, bytes], ...]:
        if self.rng.random() < 0.95:
            return ()
        return tuple(
            (f"h{i}", self.rng.randbytes(self.rng.randint(0, 16))) for i in range(self.rng.randint(1, 3))
        )

    def random_bytes(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.002:
            size = self.rng.randint(65_537, 70_000)  # over the default HUB_MAX_MESSAGE_BYTES
        elif roll < 0.05:
            size = self.rng.randint(300, 3000)
        else:
            size = self.rng.randint(0, 300)
        value = self.rng.randbytes(size)
        if self.rng.random() < 0.3:  # behind a marker, so the fingerprint check is reached
            value = SINGLE_OBJECT_MARKER + value
        return value

    def random_body(self) -> bytes:
        """A real header with a random body: the decoder, not the framing, must refuse it."""
        return (
            SINGLE_OBJECT_MARKER
            + self.rng.choice(self.fingerprints)
            + self.rng.randbytes(self.rng.randint(0, 400))
        )

    def mangled(self, payload: bytes) -> bytes:
        value = bytearray(payload)
        for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3, 4))):
            op = self.rng.choice(
                ("flip", "flip", "truncate", "insert", "delete", "splice", "duplicate", "overwrite")
            )
            at = self.rng.randint(0, len(value))
            if op == "flip" and value:
                i = self.rng.randrange(len(value))
                value[i] ^= 1 << self.rng.randrange(8)
            elif op == "truncate":
                value = value[:at]
            elif op == "insert":
                value[at:at] = self.rng.choice(self.m.snippets)
            elif op == "delete":
                del value[at : at + self.rng.randint(1, 8)]
            elif op == "splice":
                _, other, _ = self.rng.choice(self.payloads)
                value = value[:at] + other[self.rng.randint(0, len(other)) :]
            elif op == "duplicate":
                value[at:at] = value[at : at + self.rng.randint(1, 16)]
            elif op == "overwrite" and value:
                i = self.rng.randrange(len(value))
                value[i] = self.rng.randrange(256)
        return bytes(value)

    def new_value(self, old: Any) -> Any:
        rng = self.rng
        if isinstance(old, bool):
            return not old
        if isinstance(old, int):
            return rng.choice((*self.m.ints, 0, -1, 2**31 - 1, -(2**31)))
        if isinstance(old, datetime):
            return rng.choice((*self.m.moments, BASE_MOMENT + timedelta(days=rng.randint(-4000, 400))))
        if isinstance(old, date):
            return (
                rng.choice(self.m.moments).date()
                if rng.random() < 0.5
                else BASE_MOMENT.date() + timedelta(days=rng.randint(-4000, 400))
            )
        if isinstance(old, uuid.UUID):
            return uuid.UUID(int=rng.getrandbits(128))
        if isinstance(old, list):
            return [] if rng.random() < 0.5 else old * rng.randint(2, 300)
        roll = rng.random()  # a string, or None where a string may be
        if roll < 0.35:
            return rng.choice(self.m.texts)
        if roll < 0.6:
            return rng.choice(self.m.identifiers)
        if roll < 0.75:
            return rng.choice(self.symbols)
        if roll < 0.85:
            return rng.choice(self.m.texts) * rng.randint(50, 400)
        return None

    def field_mutant(self) -> Outgoing:
        source, event_type, base = self.rng.choice(self.bases)
        for _ in range(8):  # a value of the wrong type cannot be encoded: try another
            candidate = copy.deepcopy(base)
            if self.rng.random() < 0.7:
                candidate["envelope"]["event_id"] = uuid.UUID(int=self.rng.getrandbits(128))
            for _ in range(self.rng.randint(1, 3)):
                path = self.rng.choice(_leaf_paths(candidate))
                if path:
                    _set(candidate, path, self.new_value(_get(candidate, path)))
            try:
                value = _encode(event_type, candidate)
            except Exception:
                continue
            return Outgoing(
                self.source(source), self.key(message_key_of(candidate)), value, self.headers(), "field"
            )
        return Outgoing(source, message_key_of(base), _encode(event_type, base), kind="field")

    def noise(self) -> Outgoing:
        roll = self.rng.random()
        if roll < 0.30:
            return Outgoing(
                self.rng.choice(AGENCY_SOURCES), self.key(None), self.random_bytes(), self.headers(), "random"
            )
        if roll < 0.40:
            return Outgoing(
                self.rng.choice(AGENCY_SOURCES), self.key(None), self.random_body(), self.headers(), "body"
            )
        if roll < 0.75:
            source, payload, key = self.rng.choice(self.payloads)
            return Outgoing(
                self.source(source), self.key(key), self.mangled(payload), self.headers(), "mangled"
            )
        if roll < 0.95:
            return self.field_mutant()
        source, payload, key = self.rng.choice(self.payloads)
        return Outgoing(source, key, payload, kind="valid")


def message_key_of(record: dict[str, Any]) -> bytes | None:
    subject = record["envelope"]["subject"]
    for name in ("case_ref", "noms_number", "crn"):
        if isinstance(subject.get(name), str):
            return subject[name].encode()
    return None


@cache
def noise_messages(count: int = NOISE) -> tuple[Outgoing, ...]:
    fuzzer = Fuzzer(_draw_material())
    return tuple(fuzzer.noise() for _ in range(count))


# ----------------------------------------------------------------------------------------------------------
# Valid slices
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    case_ref: str
    noms: str
    person_ref: str
    unit: str
    events: tuple[Outgoing, Outgoing, Outgoing]  # sentence, referral, release


def slices(count: int = SLICES) -> list[Slice]:
    made = []
    for i in range(count):
        postcode = list(UNIT_OF_POSTCODE)[i % len(UNIT_OF_POSTCODE)]
        case_ref, noms, person_ref = f"FZ{i:04d}SL", f"S{i:04d}LC", f"SL-{i:04d}"
        events = []
        for source, data in (
            ("court", sentenced(case_ref, noms, f"2019/{i:07d}S")),
            ("witness-care", referral(case_ref, person_ref, f"Slice Victim {i}", postcode)),
            ("prison", release(noms)),
        ):
            event = event_from_json(data, source, datetime.now(UTC))
            value = CODEC.encode(event_schemas()[type(event).__name__], event.model_dump())
            events.append(Outgoing(source, message_key(event), value, kind="slice"))
        made.append(Slice(case_ref, noms, person_ref, UNIT_OF_POSTCODE[postcode], tuple(events)))
    return made


def interleave(rng: random.Random, noise: list[Outgoing], valid: list[Outgoing]) -> list[Outgoing]:
    """`valid` spread at random places among `noise`, keeping each list's own order."""
    places = sorted(rng.sample(range(len(noise) + len(valid)), len(valid)))
    out, n, v = [], iter(noise), iter(valid)
    chosen = set(places)
    for i in range(len(noise) + len(valid)):
        out.append(next(v) if i in chosen else next(n))
    return out


# ----------------------------------------------------------------------------------------------------------
# Publishing and reading back
# ----------------------------------------------------------------------------------------------------------


Sent = dict[tuple[str, int, int], Outgoing]


async def _publish(hub: Hub, messages: list[Outgoing]) -> Sent:
    """All sends first, then one wait: as fast as one producer goes. Each is signed by the agency whose topic it
    goes to: what the fuzzer varies is the content."""
    broker, prefix = hub.env["HUB_BROKER"], hub.prefix
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=20, max_request_size=2**20)
    await producer.start()
    try:
        futures = [
            await producer.send(
                f"{prefix}agency.{m.source}.events",
                m.value,
                key=m.key,
                headers=[
                    *m.headers,
                    *hub.signer(m.source).headers(f"{prefix}agency.{m.source}.events", m.key, m.value),
                ],
            )
            for m in messages
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {(md.topic, md.partition, md.offset): m for md, m in zip(metadata, messages, strict=True)}


def _wait_consumed(hub: Hub, total: int, timeout: float) -> float:
    return consumed(
        eventually(lambda: scrape(hub), lambda text: consumed(text) >= total, timeout, interval=1)
    )


def _release_notifications(hub: Hub, wanted: set[str]) -> list[dict[str, Any]]:
    codec = AvroCodec([notification_schema()])
    found = []
    for unit in sorted(set(UNIT_OF_POSTCODE.values())):
        for rec in read_topic(
            hub.env["HUB_BROKER"], f"{hub.prefix}vlo.{unit}", timeout=10, opener=hub.opener(unit)
        ):
            notification = codec.decode(rec.value).record
            if notification["event_type"] == "PrisonerReleased" and notification["case_ref"] in wanted:
                found.append(notification)
    return found


# ----------------------------------------------------------------------------------------------------------
# The worker test
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def hub(hub: Hub) -> Hub:
    """No correction hold on releases: the slices' notifications are due at once."""
    hub.env["HUB_RELEASE_HOLD_SECONDS"] = "0"
    return hub


def test_ten_thousand_hostile_messages_are_each_accounted_for_and_every_slice_is_notified_once(
    hub: Hub, worker
) -> None:
    broker = hub.env["HUB_BROKER"]
    clock = time.monotonic()
    noise = list(noise_messages())
    made = slices()
    rng = random.Random(NOISE)
    # Two waves, both interleaved: agencies publish on different topics, and a release consumed before the
    # referral published before it would go to the case owner, not the victim (Kafka orders one partition,
    # the hub one batch). So the sentences and referrals go in the first wave and the releases in the second.
    first = interleave(rng, noise[: NOISE // 2], [e for s in made for e in s.events[:2]])
    second = interleave(rng, noise[NOISE // 2 :], [s.events[2] for s in made])
    generated = time.monotonic() - clock

    clock = time.monotonic()
    sent = asyncio.run(_publish(hub, first))
    published_first = time.monotonic() - clock
    assert _wait_consumed(hub, len(first), timeout=90) == len(first), "first wave not consumed in time"
    first_wave = time.monotonic() - clock

    clock = time.monotonic()
    sent |= asyncio.run(_publish(hub, second))
    total = len(first) + len(second)
    assert _wait_consumed(hub, total, timeout=90) == total, "second wave not consumed in time"
    second_wave = time.monotonic() - clock

    # The worker survived all of it.
    assert worker.poll() is None, "the worker died"

    # Every slice's release reached its victim's unit, exactly once per notification_id.
    wanted = {s.case_ref for s in made}
    raw = eventually(
        lambda: _release_notifications(hub, wanted),
        lambda found: {n["case_ref"] for n in found} == wanted,
        timeout=30,
    )
    queues = {unit: hub.read_queue(unit, timeout=1) for unit in sorted(set(UNIT_OF_POSTCODE.values()))}
    problems = []
    for s in made:
        on_queue = [
            (n["notification_id"], n["person_ref"])
            for n in queues[s.unit]
            if n["case_ref"] == s.case_ref and n["event_type"] == "PrisonerReleased"
        ]
        if len(on_queue) != 1 or on_queue[0][1] != s.person_ref:
            problems.append(f"{s.case_ref}: {on_queue} on {s.unit}")
        elsewhere = [n["unit_code"] for n in raw if n["case_ref"] == s.case_ref and n["unit_code"] != s.unit]
        if elsewhere:
            problems.append(f"{s.case_ref}: also on {elsewhere}")
    assert problems == []
    raw_copies = len(raw)

    # Conservation: every message counted once by its outcome; every dead letter (ingest or later) is on hub.dlq.
    text = scrape(hub)
    dead = counter(text, "hub_events_consumed_total", outcome="dead_letter")
    assert counter(text, "hub_events_consumed_total") == total
    assert (
        counter(text, "hub_dead_letters_total", stage="ingest")
        + counter(text, "hub_dead_letters_total", stage="route")
        == dead
    )
    letters, all_dead = eventually(
        lambda: (
            read_topic(broker, f"{hub.prefix}hub.dlq", timeout=30, opener=hub.opener()),
            counter(scrape(hub), "hub_dead_letters_total"),
        ),
        lambda found: len(found[0]) == found[1],
        timeout=30,
    )
    assert len(letters) == all_dead, "hub.dlq and hub_dead_letters_total disagree"

    # Each dead letter says what failed where, and carries its original untouched.
    problems = []
    for letter in letters:
        headers = dict(letter.headers)
        for name in ("hub.error.stage", "hub.error.class", "hub.error.message"):
            if not headers.get(name):
                problems.append(f"offset {letter.offset}: empty {name}")
        origin = (
            headers["hub.original.topic"].decode(),
            int(headers["hub.original.partition"]),
            int(headers["hub.original.offset"]),
        )
        original = sent.get(origin)
        if original is None:
            problems.append(f"{origin}: not a published message")
        elif (letter.key, letter.value, tuple(letter.headers[: len(original.headers)])) != (
            original.key,
            original.value,
            original.headers,
        ):
            problems.append(f"{origin}: key, value or headers changed")
        if FUZZ_VICTIM.encode() in headers.get("hub.error.message", b""):
            problems.append(f"{origin}: the victim's name is in the reason")
    assert problems[:20] == []

    stages = Counter(dict(letter.headers)["hub.error.stage"].decode() for letter in letters)
    classes = Counter(dict(letter.headers)["hub.error.class"].decode() for letter in letters)
    kinds = Counter(m.kind for m in sent.values())
    print(
        f"\n{total} messages ({dict(kinds)}): generated in {generated:.1f}s, first wave ({len(first)}) published "
        f"in {published_first:.1f}s and consumed in {first_wave:.1f}s, second wave ({len(second)}) consumed in "
        f"{second_wave:.1f}s ({total / (first_wave + second_wave):.0f} messages/s); accepted "
        f"{counter(text, 'hub_events_consumed_total', outcome='accepted'):.0f}, dead-lettered {dead:.0f}; dead "
        f"letters by stage {dict(stages)}, by class {dict(classes)}; release notifications for slices on the "
        f"queues: {raw_copies}; retries {counter(text, 'hub_retries_total'):.0f}"
    )


# ----------------------------------------------------------------------------------------------------------
# A fast property test: ingest alone, no worker
# ----------------------------------------------------------------------------------------------------------


def _mangle_strategy() -> st.SearchStrategy[tuple[str, bytes]]:
    payloads = st.sampled_from([(source, _encode(t, r)) for source, t, r in bases()])

    def apply(item: tuple[str, bytes], cuts: list[tuple[int, int, bytes]]) -> tuple[str, bytes]:
        source, value = item
        for at, length, insert in cuts:
            at %= len(value) + 1
            value = value[:at] + insert + value[at + length :]
        return source, value

    edits = st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 8), st.binary(max_size=6)), min_size=1, max_size=4
    )
    return st.builds(apply, payloads, edits)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(
    st.one_of(
        st.tuples(st.sampled_from(AGENCY_SOURCES), st.binary(max_size=500)),
        st.tuples(
            st.sampled_from(AGENCY_SOURCES),
            st.builds(
                lambda fp, body: SINGLE_OBJECT_MARKER + fp + body,
                st.sampled_from([s.fingerprint for s in event_schemas().values()]),
                st.binary(max_size=300),
            ),
        ),
        _mangle_strategy(),
    )
)
def test_ingest_accepts_or_refuses_with_a_reason_and_never_raises_anything_else(
    item: tuple[str, bytes],
) -> None:
    """Anything but a permanent failure escaping ingest would make the worker retry its batch for ever."""
    source, value = item
    message = InboundMessage(f"agency.{source}.events", 0, 0, None, None, value)
    try:
        ingest(message, source, CODEC, 65536, date.today())
    except PERMANENT_FAILURES as refused:
        assert str(refused)
        assert FUZZ_VICTIM not in str(refused)
