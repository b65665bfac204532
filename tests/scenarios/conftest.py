"""End-to-end scenarios: readable YAML files of agency events and the notifications a VLO queue must hold.

One real `hub worker` per database (SQLite and PostgreSQL) serves every scenario at once, on the session's
Tansu broker; the two databases' runs overlap (one publishes while the other waits: see `Turns`). Every
identifier in a scenario is a placeholder ($CASE, $NOMS, $P1, ...) replaced by a value unique to the run, so
scenarios never see each other's notifications: each one is judged only on the notifications that carry its
case references.

The run, once per database:

1. Publish. Scenario steps are published in rounds: round k publishes step k of every scenario, one
   `hub publish --source <source>` call per source (a call never holds two steps of one scenario, so the
   order inside a scenario is kept and each step gets its own publication time). An `acknowledge` step
   reads the unit's queue for the notification it names and publishes `NotificationAcknowledged` with its id.
2. Wait until every window has passed: the correction window after the last release, and the
   acknowledgement window after the last urgent event (except in scenarios that expect an escalation: waiting
   for that expectation covers them). Then `hub queue read` every unit queue, once per poll round, until every
   expectation of every scenario (not those marked xfail) is met, for at most POLL_SECONDS. The last round's
   reads are the result: each scenario keeps the notifications that carry its case references.

What the hub writes for other agencies (`outbound.<agency>`, docs/domain.md section 8) is read the same way, with
each agency's key (`hub outbound read`): a scenario's `expect_outbound` lists the records it must find there, each
exactly once, matched on `agency`, `record_type` and any of the record's fields.

Dates are placeholders too ($TODAY, $DAYS_AGO_30, $DAYS_AHEAD_60, $HOURS_AGO_3; ${DAYS_AGO_400}T14:30:00Z
inside a longer string; $WORKDAYS_40_AFTER_DAYS_AGO_3 and $ANNIVERSARY_OF_DAYS_AGO_400 for deadlines computed
here from docs/domain.md section 6), so a deadline that depends on "now" is driven by the dates in the events.
Expectation values may be $ANY (present, whatever its value).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
import string
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holidays
import pytest
import yaml

from hub.runtime.processes import free_port, spawn, stop
from tests.integration.conftest import (  # noqa: F401  (broker: the session-scoped broker)
    Hub,
    _postgres_database,
    broker,
    with_keys,
)
from tests.integration.waiting import wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = Path(__file__).resolve().parent
HUB = [sys.executable, "-m", "hub.cli"]

# One worker serves every scenario, so these hold for all of them; scenarios are designed for these values.
RELEASE_HOLD_SECONDS = 40.0  # a PrisonerReleased waits this long (room for a loaded machine)
URGENT_ACK_MINUTES = 0.75  # 45 s, room for the acknowledge step on a loaded machine; then it escalates
TIMER_CHECK_SECONDS = 1.0
WORKER_SETTINGS = {
    "HUB_RELEASE_HOLD_SECONDS": str(RELEASE_HOLD_SECONDS),
    "HUB_URGENT_ACK_MINUTES": str(URGENT_ACK_MINUTES),
    "HUB_TIMER_CHECK_SECONDS": str(TIMER_CHECK_SECONDS),
    "HUB_SESSION_TIMEOUT_SECONDS": "6",
}
SETTLE_SECONDS = 3 * TIMER_CHECK_SECONDS + 2  # for the worker to apply an event or fire a timer, and deliver
POLL_SECONDS = 60.0  # longest wait for the expectations once every window has passed
ACK_LOOKUP_SECONDS = 12.0  # longest wait for a notification an acknowledge step names
PARALLEL_COMMANDS = 5
# docs/domain.md section 4: the events that are urgent (used only to know how long to wait).
URGENT_EVENTS = {
    "TemporaryReleaseFailedToReturn",
    "PrisonerEscaped",
    "OffenderRecalled",
    "SeriousFurtherOffenceCharged",
    "ApprovedPremisesAbsconded",
    "PatientRecalledToHospital",
    "PatientAbsconded",
}
UNITS = ["NE", "NW", "YH", "GM", "EM", "WM", "EE", "LON", "KSS", "SW", "SC", "WAL", "NATIONAL"]
OUTBOUND_AGENCIES = ["probation", "parole-board", "prison"]

# Expectation keys and the notification field each one compares.
FIELD_OF = {
    "unit": "unit_code",
    "vlo_id": "vlo_id",
    "person_ref": "person_ref",
    "victim_name": "victim_name",
    "event_type": "event_type",
    "kind": "kind",
    "action": "action",
    "priority": "priority",
    "category": "category",
    "due_by": "due_by",
    "language": "language",
    "preferred_channel": "preferred_channel",
    "victim_conditions": "victim_conditions",
    "omitted_requests": "omitted_requests",
    "request_outcomes": "request_outcomes",
    "source_event_ids": "source_event_ids",
}
SPECIAL_KEYS = {"facts", "summary_contains"}
ANY = "$ANY"  # an expectation value meaning "present, whatever it is"

# Event fields whose values must never reach a notification (docs/domain.md section 5.7; issue 4 item 7).
SENSITIVE_FIELDS = {
    "postcode",
    "lines",
    "address_lines",
    "phone",
    "email",
    "date_of_birth",
    "prison_code",
    "from_prison",
    "to_prison",
    "hospital_code",
    "hospital_name",
    "premises_code",
    "establishment",
    "release_address",
    "curfew_address",
    "clinical_summary",
    "diagnosis",
    "treatment",
}

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}|\$([A-Z][A-Z0-9_]*)")


# ---------------------------------------------------------------- scenario files
@dataclass
class Step:
    source: str
    event: dict[str, Any] | None = None  # published as one JSON line
    acknowledge: dict[str, Any] | None = None  # find this notification, then acknowledge it


@dataclass
class Scenario:
    name: str
    title: str
    steps: list[Step]
    expect: list[dict[str, Any]]
    forbid_text: list[str]
    xfail: str | None
    settings: dict[str, str]
    expect_outbound: list[dict[str, Any]] = field(default_factory=list)
    case_refs: set[str] = field(default_factory=set)
    victims: dict[str, str] = field(default_factory=dict)  # person_ref -> name, from the referrals
    sensitive: set[str] = field(default_factory=set)  # values from the events that no notification may carry

    @property
    def awaits_escalation(self) -> bool:
        """The run waits for this scenario's expected urgent escalation (never for an xfail scenario's)."""
        return not self.xfail and any(e.get("event_type") == "urgent_unacknowledged" for e in self.expect)


def _plain(value: Any) -> Any:
    """YAML dates become ISO strings, as an agency would write them in JSON."""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def scenario_files() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def read_scenario_file(path: Path) -> dict[str, Any]:
    data = _plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    unknown = set(data) - {
        "title",
        "story",
        "xfail",
        "settings",
        "events",
        "expect",
        "expect_outbound",
        "forbid_text",
    }
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {sorted(unknown)}")
    return data


def working_days_after(start: dt.date, n: int) -> dt.date:
    """docs/domain.md section 6.1, computed apart from the hub: Monday to Friday except England and Wales
    bank holidays (substitute days included); the trigger day is day 0."""
    bank_holidays = holidays.country_holidays("GB", subdiv="ENG", years=range(start.year, start.year + 3))
    day = start
    while n:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in bank_holidays:
            n -= 1
    return day


def anniversary(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February: docs/domain.md section 6.2 takes the 28th
        return day.replace(year=day.year + 1, day=28)


class Values:
    """Placeholder values, unique within one run (one database) across all scenarios."""

    def __init__(self, today: dt.date) -> None:
        self.today = today
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        rng = random.Random()
        self.tag = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(4))
        self.letters = [rng.choice(string.ascii_uppercase) for _ in range(3)]
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def make(self, token: str, index: int) -> Any:
        """A fresh value for a placeholder seen for the first time in scenario `index`."""
        a, b, c = self.letters
        if m := re.fullmatch(r"DAYS_AGO_(\d+)", token):
            return (self.today - dt.timedelta(days=int(m[1]))).isoformat()
        if m := re.fullmatch(r"DAYS_AHEAD_(\d+)", token):
            return (self.today + dt.timedelta(days=int(m[1]))).isoformat()
        if m := re.fullmatch(r"HOURS_AGO_(\d+)", token):
            return (self.now - dt.timedelta(hours=int(m[1]))).isoformat().replace("+00:00", "Z")
        if m := re.fullmatch(r"WORKDAYS_(\d+)_AFTER_DAYS_AGO_(\d+)", token):
            return working_days_after(self.today - dt.timedelta(days=int(m[2])), int(m[1])).isoformat()
        if m := re.fullmatch(r"ANNIVERSARY_OF_DAYS_AGO_(\d+)", token):
            return anniversary(self.today - dt.timedelta(days=int(m[1]))).isoformat()
        if token == "TODAY":
            return self.today.isoformat()
        if token.startswith("UUID_"):
            return str(uuid.uuid4())
        n = self._next()
        if re.fullmatch(r"CASE\d*", token):
            return f"SC{self.tag}{index:02d}{n:03d}"
        if re.fullmatch(r"NOMS\d*", token):
            return f"{a}{n:04d}{b}{c}"
        if re.fullmatch(r"CRN\d*", token):
            return f"{b}{n:06d}"
        if re.fullmatch(r"PNC\d*", token):
            return f"{2000 + n % 25}/{n:07d}{c}"
        if re.fullmatch(r"CRO\d*", token):
            return f"{n:06d}/{10 + n % 80:02d}{a}"
        if re.fullmatch(r"BOOKING\d*", token):
            return 1_000_000 + n
        if re.fullmatch(r"P\d+", token):
            return f"WC-{self.tag}-{index:02d}-{token[1:]}"
        if re.fullmatch(r"PB\d*", token):
            return f"PB-{self.tag}-{n:04d}"
        if re.fullmatch(r"PATIENT\d*", token):
            return f"MHCS-{self.tag}-{n:04d}"
        if re.fullmatch(r"HO\d*", token):
            return f"HO{self.tag}{n:05d}"
        raise KeyError(token)


def _substitute(value: Any, lookup) -> Any:
    if isinstance(value, str):
        if value == ANY:
            return value
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return lookup(whole[1] or whole[2])
        return PLACEHOLDER.sub(lambda m: str(lookup(m[1] or m[2])), value)
    if isinstance(value, dict):
        return {k: _substitute(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, lookup) for v in value]
    return value


def _sensitive_values(value: Any, found: set[str], inside: bool = False) -> None:
    """Every string (or date) under a sensitive field of an event."""
    if isinstance(value, dict):
        for key, item in value.items():
            # A town may rightly appear in an exclusion zone "as the licence states it"; streets may not.
            if key != "town":
                _sensitive_values(item, found, inside or key in SENSITIVE_FIELDS)
    elif isinstance(value, list):
        for item in value:
            _sensitive_values(item, found, inside)
    elif inside and isinstance(value, str) and len(value.strip()) >= 3:
        found.add(value.strip())


def resolve(path: Path, index: int, values: Values) -> Scenario:
    data = read_scenario_file(path)
    seen: dict[str, Any] = {}
    case_refs: set[str] = set()

    def lookup(token: str) -> Any:
        if token not in seen:
            seen[token] = values.make(token, index)
            if re.fullmatch(r"CASE\d*", token):
                case_refs.add(seen[token])
        return seen[token]

    steps = []
    for number, raw in enumerate(data.get("events") or [], start=1):
        if not isinstance(raw, dict) or "source" not in raw or ("event" in raw) == ("acknowledge" in raw):
            raise ValueError(f"{path.name}: event {number} needs a source and one of event/acknowledge")
        steps.append(
            Step(
                source=raw["source"],
                event=_substitute(raw.get("event"), lookup),
                acknowledge=_substitute(raw.get("acknowledge"), lookup),
            )
        )
    expect = _substitute(data.get("expect") or [], lookup)
    for item in expect:
        unknown = set(item) - set(FIELD_OF) - SPECIAL_KEYS
        if unknown:
            raise ValueError(f"{path.name}: unknown expectation keys {sorted(unknown)}")
    expect_outbound = _substitute(data.get("expect_outbound") or [], lookup)
    for item in expect_outbound:
        if item.get("agency") not in OUTBOUND_AGENCIES or "record_type" not in item:
            raise ValueError(
                f"{path.name}: an outbound expectation needs an agency and a record_type: {item}"
            )
    scenario = Scenario(
        name=path.stem,
        title=data.get("title", path.stem),
        steps=steps,
        expect=expect,
        forbid_text=[str(t) for t in _substitute(data.get("forbid_text") or [], lookup)],
        xfail=data.get("xfail"),
        settings={str(k): str(v) for k, v in (data.get("settings") or {}).items()},
        expect_outbound=expect_outbound,
        case_refs=case_refs,
    )
    for step in steps:
        if step.event is None:
            continue
        _sensitive_values(step.event, scenario.sensitive)
        victim = step.event.get("victim")
        if step.event.get("event_type") == "VictimReferred" and isinstance(victim, dict):
            scenario.victims[victim["person_ref"]] = victim["name"]
    return scenario


# ---------------------------------------------------------------- matching
def matches(expected: dict[str, Any], notification: dict[str, Any]) -> bool:
    for key, want in expected.items():
        if key == "facts":
            facts = notification.get("facts") or {}
            for name, value in want.items():
                if name not in facts or (value != ANY and str(facts[name]) != str(value)):
                    return False
        elif key == "summary_contains":
            wanted = [want] if isinstance(want, str) else want
            if not all(text in notification.get("summary", "") for text in wanted):
                return False
        else:
            have = notification.get(FIELD_OF[key])
            if want == ANY:
                if have in (None, [], {}):
                    return False
            elif have != want:
                return False
    return True


def matches_outbound(expected: dict[str, Any], record: dict[str, Any]) -> bool:
    """An outbound record (with the `agency` it was read for) holds every field the expectation lists."""
    for key, want in expected.items():
        have = record.get(key)
        if want == ANY:
            if have in (None, [], {}):
                return False
        elif have != want:
            return False
    return True


def describe(notification: dict[str, Any]) -> str:
    keys = ("unit_code", "event_type", "kind", "person_ref", "vlo_id", "action", "priority", "category")
    short = {k: notification.get(k) for k in keys}
    return f"{short} summary={notification.get('summary')!r}"


# ---------------------------------------------------------------- the run
@dataclass
class RunResult:
    database: str
    scenarios: dict[str, Scenario]
    notifications: dict[str, list[dict[str, Any]]]  # scenario name -> its notifications
    all_notifications: list[dict[str, Any]]
    outbound: dict[str, list[dict[str, Any]]]  # scenario name -> the outbound records of its cases
    all_outbound: list[
        dict[str, Any]
    ]  # every outbound record of the run, each with the agency it was read for
    errors: dict[str, list[str]]  # scenario name -> publishing problems
    timings: dict[str, float]
    worker_log: Path


@dataclass
class Collected:
    notifications: dict[str, list[dict[str, Any]]]
    all_notifications: list[dict[str, Any]]
    outbound: dict[str, list[dict[str, Any]]]
    all_outbound: list[dict[str, Any]]


def read_queues(hub: Hub, units: list[str], pool: ThreadPoolExecutor) -> dict[str, list[dict[str, Any]]]:
    """Every unit's queue, read in parallel (one `hub queue read` per unit)."""
    return dict(zip(units, pool.map(lambda unit: hub.read_queue(unit, timeout=1), units), strict=True))


def read_outbound(hub: Hub, agency: str) -> list[dict[str, Any]]:
    """Every record on an agency's outbound topic, opened with its key, each marked with the agency."""
    result = hub.run("outbound", "read", "--agency", agency, "--timeout", "1")
    assert result.returncode == 0, result.stderr
    return [{"agency": agency, **json.loads(line)} for line in result.stdout.splitlines() if line.strip()]


class Runner:
    def __init__(self, hub: Hub, scenarios: list[Scenario], pool: ThreadPoolExecutor) -> None:
        self.hub = hub
        self.scenarios = scenarios
        self.pool = pool
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.by_case = {ref: s.name for s in scenarios for ref in s.case_refs}
        # seconds from an urgent event (a release) to the acknowledgement (the cancellation) published after it
        self.delays: dict[str, list[float]] = {"acknowledgement": [], "cancellation": []}

    def _publish_group(self, source: str, lines: list[tuple[Scenario, dict[str, Any]]]) -> None:
        text = "\n".join(json.dumps(event) for _, event in lines) + "\n"
        result = self.hub.run("publish", "--source", source, "--skip-invalid", input=text)
        if result.returncode == 0:
            return
        reported = False
        for line in result.stderr.splitlines():
            if m := re.match(r"line (\d+): (.*)", line):
                scenario, event = lines[int(m[1]) - 1]
                self.errors[scenario.name].append(f"{source} {event.get('event_type')} rejected: {m[2]}")
                reported = True
        if not reported:
            for scenario, _event in lines:
                self.errors[scenario.name].append(
                    f"hub publish --source {source} failed ({result.returncode}): {result.stderr[-1500:]}"
                )

    def _acknowledgements(self, steps: list[tuple[Scenario, Step]]) -> list[tuple[Scenario, dict[str, Any]]]:
        """Find each named notification on its queue; the NotificationAcknowledged events to publish."""
        pending = list(steps)
        found: list[tuple[Scenario, dict[str, Any]]] = []
        deadline = time.monotonic() + ACK_LOOKUP_SECONDS
        while pending:
            queues = read_queues(
                self.hub, sorted({step.acknowledge["unit"] for _, step in pending}), self.pool
            )
            still = []
            for scenario, step in pending:
                wanted = {"kind": "event", **step.acknowledge}
                vlo = wanted.pop("acknowledged_by", None)
                hits = [
                    n
                    for n in queues[wanted["unit"]]
                    if n["case_ref"] in scenario.case_refs and matches(wanted, n)
                ]
                if len(hits) == 1:
                    event = {
                        "event_type": "NotificationAcknowledged",
                        "notification_id": hits[0]["notification_id"],
                        "vlo_id": vlo or hits[0]["vlo_id"] or "triage",
                    }
                    found.append((scenario, event))
                elif len(hits) > 1 or time.monotonic() > deadline:
                    self.errors[scenario.name].append(
                        f"acknowledge step: {len(hits)} notification(s) match {step.acknowledge}"
                    )
                else:
                    still.append((scenario, step))
            pending = still
            if pending:
                time.sleep(0.5)
        return found

    def publish_all(self) -> float:
        """Publish every step, round by round; returns when the last effect due to a timer can have happened."""
        quiet_until = time.monotonic()
        last_published: dict[str, float] = {}
        rounds = max(len(s.steps) for s in self.scenarios)
        for k in range(rounds):
            now_steps = [(s, s.steps[k]) for s in self.scenarios if k < len(s.steps)]
            groups: dict[str, list[tuple[Scenario, dict[str, Any]]]] = defaultdict(list)
            acks = [(s, step) for s, step in now_steps if step.acknowledge is not None]
            for scenario, event in self._acknowledgements(acks):
                groups["vcs"].append((scenario, event))
            for scenario, step in now_steps:
                if step.event is not None:
                    groups[step.source].append((scenario, step.event))
            list(self.pool.map(lambda item: self._publish_group(*item), groups.items()))
            published = time.monotonic()
            for scenario, step in now_steps:
                cancels = (step.event or {}).get("event_type") == "PrisonerReleaseCancelled"
                follow_up = (
                    "acknowledgement" if step.acknowledge is not None else "cancellation" if cancels else ""
                )
                if follow_up and scenario.name in last_published:
                    self.delays[follow_up].append(published - last_published[scenario.name])
                last_published[scenario.name] = published
            # A held release reaches its queue (or, withdrawn, must not) after the correction window. An urgent
            # notification escalates (or, acknowledged, must not) after the acknowledgement window: wait for
            # that unless the scenario expects an escalation anyway (waiting for it covers its earlier events).
            for scenario, step in now_steps:
                event_type = (step.event or {}).get("event_type")
                if event_type == "PrisonerReleased":
                    quiet_until = max(quiet_until, published + RELEASE_HOLD_SECONDS + SETTLE_SECONDS)
                if event_type in URGENT_EVENTS and not scenario.awaits_escalation:
                    quiet_until = max(quiet_until, published + URGENT_ACK_MINUTES * 60 + SETTLE_SECONDS)
            quiet_until = max(quiet_until, published + SETTLE_SECONDS)
            time.sleep(0.3)  # let the worker take this round before the next one is published
        return quiet_until

    def _by_scenario(self, queues: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        mine: dict[str, list[dict[str, Any]]] = {s.name: [] for s in self.scenarios}
        for notifications in queues.values():
            for notification in notifications:
                name = self.by_case.get(notification["case_ref"])
                if name is not None:
                    mine[name].append(notification)
        return mine

    def _all_met(
        self, mine: dict[str, list[dict[str, Any]]], outbound: dict[str, list[dict[str, Any]]]
    ) -> bool:
        for scenario in self.scenarios:
            if scenario.xfail or self.errors.get(scenario.name):
                continue
            for expected in scenario.expect:
                if not any(matches(expected, n) for n in mine[scenario.name]):
                    return False
            for expected in scenario.expect_outbound:
                if not any(matches_outbound(expected, r) for r in outbound[scenario.name]):
                    return False
        return True

    def wait_and_collect(self, quiet_until: float) -> Collected:
        """Read every unit queue and outbound topic until every expectation is met (at most POLL_SECONDS after the
        quiet time)."""
        time.sleep(max(0.0, quiet_until - time.monotonic()))
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            queues = read_queues(self.hub, UNITS, self.pool)
            read = self.pool.map(lambda agency: read_outbound(self.hub, agency), OUTBOUND_AGENCIES)
            topics = dict(zip(OUTBOUND_AGENCIES, read, strict=True))
            mine = self._by_scenario(queues)
            outbound = self._by_scenario(topics)
            if self._all_met(mine, outbound) or time.monotonic() > deadline:
                return Collected(
                    mine,
                    [n for notifications in queues.values() for n in notifications],
                    outbound,
                    [r for records in topics.values() for r in records],
                )
            time.sleep(1.0)


def load_all(values: Values) -> list[Scenario]:
    return [resolve(path, index, values) for index, path in enumerate(scenario_files(), start=1)]


DATABASES = ["sqlite", "postgresql"]


class Turns:
    """The runs' commands, one run at a time. Runs go in DATABASES order: a run starts its worker once the run
    before has published everything, and publishes once no other run is publishing or reading; a run reads the
    queues once its windows have passed and no other run is publishing or reading. Only a run's wait for its
    windows overlaps with the next run, so while its commands run (and while its acknowledgement steps are
    timed) a run puts no more load on the machine than it did alone."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.busy = threading.Lock()
        self.done = {database: threading.Event() for database in order}

    def wait_for_earlier(self, database: str) -> None:
        for earlier in self.order[: self.order.index(database)]:
            self.done[earlier].wait()

    def published(self, database: str) -> None:
        self.done[database].set()

    def commands(self) -> threading.Lock:
        return self.busy


class DatabaseRun:
    """One database's run: its own database, data directory, topic prefix, consumer group and `hub worker`."""

    def __init__(self, database: str, address: str, data_dir: Path, url: str) -> None:
        self.database = database
        self.data_dir = data_dir
        self.values = Values(dt.datetime.now(dt.UTC).date())
        self.scenarios = load_all(self.values)
        settings = dict(WORKER_SETTINGS)
        for scenario in self.scenarios:
            for key, value in scenario.settings.items():
                if settings.setdefault(key, value) != value:
                    raise ValueError(f"{scenario.name}: setting {key}={value} conflicts with {settings[key]}")
        tag = uuid.uuid4().hex[:8]
        self.env = {
            "HUB_BROKER": address,
            "HUB_DATABASE_URL": url,
            "HUB_DATA_DIR": str(data_dir / "hub"),
            "HUB_KEYS_DIR": str(with_keys(data_dir / "hub" / "keys")),
            "HUB_TOPIC_PREFIX": f"s{tag}.",
            "HUB_APP_ID": f"hub-scenarios-{tag}",
            "HUB_WEB_PORT": str(free_port()),
            "FAUST_DATADIR": str(data_dir / "faust"),  # faust's own directory, else <app id>-data in the cwd
            **settings,
        }
        self.hub = Hub(env=self.env, data_dir=data_dir / "hub")
        self.log = data_dir / "worker.log"
        self.process: Any = None

    def execute(self, turns: Turns) -> RunResult:
        """Start the worker, publish, wait and collect, on a thread of its own (see Turns)."""
        env, data_dir = self.env, self.data_dir
        timings: dict[str, float] = {}
        try:
            turns.wait_for_earlier(self.database)
            started = time.monotonic()
            self.process = spawn([*HUB, "worker"], self.log, env=env)
            wait_until_healthy(
                f"http://127.0.0.1:{env['HUB_WEB_PORT']}/health", self.process, self.log, timeout=90
            )
            timings["worker_ready"] = time.monotonic() - started
            with ThreadPoolExecutor(PARALLEL_COMMANDS) as pool:
                runner = Runner(self.hub, self.scenarios, pool)
                with turns.commands():
                    timings["publishing"] = time.monotonic() - started
                    quiet_until = runner.publish_all()
                timings["published"] = time.monotonic() - started
                turns.published(self.database)
                # The windows pass (wait_and_collect's own wait, taken here so as not to hold the turn).
                time.sleep(max(0.0, quiet_until - time.monotonic()))
                with turns.commands():
                    timings["collecting"] = time.monotonic() - started
                    collected = runner.wait_and_collect(quiet_until)
                timings["collected"] = time.monotonic() - started
                for what, delays in runner.delays.items():
                    timings[f"slowest_{what}"] = max(delays, default=0.0)
        finally:
            turns.published(self.database)  # even if this run failed before publishing: the next one goes on
            if self.process is not None:
                stop(self.process, 10)  # nothing is read from the worker after this
        result = RunResult(
            database=self.database,
            scenarios={s.name: s for s in self.scenarios},
            notifications=collected.notifications,
            all_notifications=collected.all_notifications,
            outbound=collected.outbound,
            all_outbound=collected.all_outbound,
            errors=dict(runner.errors),
            timings=timings,
            worker_log=self.log,
        )
        (data_dir / "notifications.json").write_text(
            json.dumps(collected.notifications, indent=1, ensure_ascii=False)
        )
        (data_dir / "timings.json").write_text(json.dumps(timings))
        sys.stderr.write(f"\nscenarios on {self.database}: {timings}\n")
        return result


@contextlib.contextmanager
def database_run(database: str, address: str, data_dir: Path) -> Iterator[DatabaseRun]:
    """A run's database made; afterwards its worker stopped (if the run did not stop it), the database dropped."""
    postgres = None
    if database == "sqlite":
        url = f"sqlite:///{data_dir / 'hub.db'}"
    else:
        postgres = _postgres_database()
        url = next(postgres)
    run = None
    try:
        run = DatabaseRun(database, address, data_dir, url)
        yield run
    finally:
        if run is not None and run.process is not None:
            stop(run.process, 10)
        if postgres is not None:
            next(postgres, None)


def _databases_wanted(session: pytest.Session) -> list[str]:
    """The databases whose scenario tests were collected (all of them, unless -k or a node id chose some)."""
    wanted = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "scenario_run" in callspec.params:
            wanted.add(callspec.params["scenario_run"])
    return [database for database in DATABASES if database in wanted]


@pytest.fixture(scope="module")
def scenario_runs(
    request: pytest.FixtureRequest,
    broker: str,  # noqa: F811 (the session-scoped fixture imported above)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[RunResult]]]:
    """Every database's run, each on its own thread: a run spends about half its time waiting for the hub's
    windows (correction, acknowledgement), and the other run publishes meanwhile (see Turns). Each run has its
    own database, topics, consumer group and worker, as when they ran one after the other, and the same steps,
    windows and checks."""
    futures: dict[str, Future[RunResult]] = {}
    with contextlib.ExitStack() as stack:
        runs: dict[str, DatabaseRun] = {}
        for database in _databases_wanted(request.session):
            data_dir = tmp_path_factory.mktemp(f"scenarios-{database}")
            try:
                runs[database] = stack.enter_context(database_run(database, broker, data_dir))
            except (
                Exception,
                pytest.skip.Exception,
            ) as error:  # that database's tests fail (or skip) with it
                futures[database] = Future()
                futures[database].set_exception(error)
        pool = stack.enter_context(ThreadPoolExecutor(max(1, len(runs)), thread_name_prefix="scenarios"))
        turns = Turns(list(runs))
        futures.update({database: pool.submit(run.execute, turns) for database, run in runs.items()})
        yield futures
        # Leaving: the pool waits for any run still going, then each worker is stopped and its database dropped.


@pytest.fixture(scope="module", params=DATABASES)
def scenario_run(request: pytest.FixtureRequest, scenario_runs: dict[str, Future[RunResult]]) -> RunResult:
    return scenario_runs[request.param].result()
