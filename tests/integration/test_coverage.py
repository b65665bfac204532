"""Coverage, the inspection's measure for the hub: `hub report coverage`, the console's panel and the gauges.

The worker's pipeline builds a case store in-process (SQLite and PostgreSQL, no broker): two cases, five victims
with different choices, the inspection's three event types and others, acknowledgements at known times, a victim
caught up on an event applied before their referral, and a held release withdrawn by its cancellation. Then the
store is corrupted on purpose (notification rows deleted) and the self-check must list each gap.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import multiprocessing
import os
import select as waiting
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.cli.main import app
from hub.console.coverage import CoverageGauges, CoverageWatch, console_view
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reports.coverage import (
    CoverageReport,
    Figures,
    coverage,
    default_period,
    render_csv,
    render_json,
    render_table,
)
from hub.store.models import Notification
from schemas import event_schemas

CODEC = hub_codec()
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
SINCE, UNTIL = T0 - timedelta(minutes=1), T0 + timedelta(hours=2)
CASE_A, NOMS_A, CRN_A = "01CV0001226", "C1234CV", "C123456"
CASE_B, NOMS_B = "01CV0002226", "D1234CV"
STATIC = Path(__file__).resolve().parents[2] / "hub" / "console" / "static"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Store:
    pipeline: Pipeline
    clock: Clock
    event_ids: dict[str, str]  # a name of the test's for each event: its event id

    def apply(
        self, name: str, source: str, data: dict, applied: float, published: float | None = None
    ) -> None:
        """Apply one event at minute `applied`, published by its agency at minute `published` (default: then)."""
        self.clock.now = at(applied)
        when = at(applied if published is None else published)
        event = event_from_json({**data, "published_at": when.isoformat()}, source, when)
        value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
        result = self.pipeline.process([InboundMessage(f"x.agency.{source}.events", 0, 0, None, None, value)])
        assert result.dead_letters == [] and result.transient == [], name
        self.event_ids[name] = str(event.envelope.event_id)

    def notification(self, event: str, person_ref: str | None) -> str:
        with Session(self.pipeline.engine) as session:
            return session.scalars(
                select(Notification.notification_id).where(
                    Notification.source_event_id == self.event_ids[event],
                    Notification.kind == "event",
                    Notification.person_ref == person_ref
                    if person_ref is not None
                    else Notification.person_ref.is_(None),
                )
            ).one()

    def publish_all_but(self, minutes: float, *left: str) -> None:
        """The unit queues confirm every notification not yet on them, except those named."""
        with Session(self.pipeline.engine) as session:
            ids = list(
                session.scalars(
                    select(Notification.notification_id).where(
                        Notification.published_at.is_(None), Notification.withdrawn_at.is_(None)
                    )
                )
            )
        self.pipeline.published([i for i in ids if i not in left], at(minutes))
        self.pipeline.confirm_published()

    def acknowledge(self, event: str, person_ref: str, minutes: float) -> None:
        data = {
            "event_type": "NotificationAcknowledged",
            "notification_id": self.notification(event, person_ref),
            "vlo_id": "vlo-test-1",
        }
        self.apply(f"ack {event} {person_ref}", "vcs", data, minutes)

    def delete(self, event: str, person_ref: str) -> None:
        identity = self.notification(event, person_ref)
        with Session(self.pipeline.engine) as session, session.begin():
            session.execute(delete(Notification).where(Notification.notification_id == identity))

    def report(self, unit: str | None = None) -> CoverageReport:
        return coverage(self.pipeline.engine, SINCE, UNTIL, unit=unit, urgent_ack_minutes=30)


def sentence(case_ref: str, noms: str, **subject: str) -> dict:
    return {
        "event_type": "SentenceImposed",
        "case_ref": case_ref,
        "noms_number": noms,
        **subject,
        "court_code": "Newcastle Crown Court",  # the North East owns the case until a victim is referred
        "sentence_date": (T0 - timedelta(days=30)).date().isoformat(),
        "offences": [{"code": "OF61016", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 36,
    }


def referral(case_ref: str, person_ref: str, postcode: str) -> dict:
    return {
        "event_type": "VictimReferred",
        "case_ref": case_ref,
        "referral_date": T0.date().isoformat(),
        "victim": {"person_ref": person_ref, "name": "Coverage Victim", "address": {"postcode": postcode}},
    }


def released(noms: str) -> dict:
    return {
        "event_type": "PrisonerReleased",
        "noms_number": noms,
        "release_type": "automatic",
        "release_date": T0.date().isoformat(),
    }


def build(pipeline: Pipeline) -> Store:
    """Case A: V1 (YH) chose custody progress and release, V2 (YH) opted out, V3 (NE) chose nothing yet.
    Case B: V4 (YH) referred before a release was published but applied after it (caught up), V5 (YH) referred
    after it; a later release of B is held and withdrawn by its cancellation."""
    clock = Clock()
    pipeline.clock = clock
    store = Store(pipeline, clock, {})
    store.apply("sentence A", "court", sentence(CASE_A, NOMS_A, crn=CRN_A), 0)
    store.apply("sentence B", "court", sentence(CASE_B, NOMS_B), 0)
    for person, postcode in (("WC-CV-1", "LS6 2AB"), ("WC-CV-2", "LS6 2AB"), ("WC-CV-3", "NE1 4ST")):
        store.apply(f"referral {person}", "witness-care", referral(CASE_A, person, postcode), 1)
    preferences = {
        "event_type": "VictimPreferencesUpdated",
        "case_ref": CASE_A,
        "person_ref": "WC-CV-1",
        "categories": ["custody_progress", "release"],
    }
    store.apply("preferences", "vcs", preferences, 2)
    store.apply(
        "opt out", "vcs", {"event_type": "VictimOptedOut", "case_ref": CASE_A, "person_ref": "WC-CV-2"}, 2
    )

    open_conditions = {
        "event_type": "PrisonerRecategorised",
        "noms_number": NOMS_A,
        "from_category": "C",
        "to_category": "D",
        "effective_date": T0.date().isoformat(),
    }
    store.apply("recategorised", "prison", open_conditions, 10)
    rotl = {
        "event_type": "TemporaryReleaseDecided",
        "noms_number": NOMS_A,
        "decision": "granted",
        "decision_date": T0.date().isoformat(),
        "first_release_date": (T0 + timedelta(days=14)).date().isoformat(),
        "conditions": [],
    }
    store.apply("rotl", "prison", rotl, 10)
    closed_to_closed = {
        "event_type": "PrisonerTransferred",
        "noms_number": NOMS_A,
        "from_prison": "WDI",
        "to_prison": "HDI",
        "from_conditions": "closed",
        "to_conditions": "closed",
        "transferred_at": T0.isoformat(),
    }
    store.apply("transferred", "prison", closed_to_closed, 10)  # not notifiable on its facts
    store.apply("released A", "prison", released(NOMS_A), 10)
    escaped = {"event_type": "PrisonerEscaped", "noms_number": NOMS_A, "escaped_at": T0.isoformat()}
    store.apply("escaped", "prison", escaped, 10)
    mappa = {
        "event_type": "MappaManagementChanged",
        "crn": CRN_A,
        "level": 2,
        "category": 2,
        "effective_date": T0.date().isoformat(),
    }
    store.apply("mappa", "probation", mappa, 10)
    appeal = {"event_type": "AppealLodged", "case_ref": CASE_A, "appeal_type": "sentence"}
    store.apply("appeal", "court", appeal, 10)
    not_yet_on_its_queue = store.notification("released A", "WC-CV-3")
    store.publish_all_but(11, not_yet_on_its_queue)

    store.apply("released B", "prison", released(NOMS_B), 20)  # nobody referred yet: to the case's unit
    store.apply("referral WC-CV-4", "witness-care", referral(CASE_B, "WC-CV-4", "LS6 2AB"), 21, published=19)
    store.apply("referral WC-CV-5", "witness-care", referral(CASE_B, "WC-CV-5", "LS6 2AB"), 22)
    store.publish_all_but(23, not_yet_on_its_queue)
    pipeline.settings.release_hold_seconds = 3600
    store.apply("released B again", "prison", released(NOMS_B), 30)
    cancelled = {
        "event_type": "PrisonerReleaseCancelled",
        "noms_number": NOMS_B,
        "cancels_event_id": store.event_ids["released B again"],
    }
    store.apply("cancelled", "prison", cancelled, 31)

    store.acknowledge("recategorised", "WC-CV-1", 15)  # 4 minutes after it was on the queue
    store.acknowledge("rotl", "WC-CV-1", 31)  # 20 minutes
    store.acknowledge("escaped", "WC-CV-1", 20)  # 10 minutes after it was made: in time
    store.acknowledge("escaped", "WC-CV-2", 50)  # 40 minutes: the escalation had fired
    return store


def counts(figures: Figures) -> dict:
    shown = figures.as_dict()
    return {
        key: shown[key]
        for key in ("events", "victims", "inform_victim", "record_only", "written", "acknowledged")
    }


def test_the_report_counts_who_should_be_told_who_was_and_how_fast_the_vlo_acknowledged(
    pipeline: Pipeline,
) -> None:
    store = build(pipeline)

    report = store.report()

    inspection = {measure.name: figures for measure, figures in report.inspection}
    assert [measure.inspection_percent for measure, _ in report.inspection] == [43, 67, 88]
    assert counts(inspection["open_conditions"]) == {
        "events": 1,
        "victims": 1,
        "inform_victim": 1,
        "record_only": 0,
        "written": 1,
        "acknowledged": 1,
    }
    assert inspection["open_conditions"].acknowledge_median == 240
    assert inspection["temporary_release"].acknowledge_median == 1200
    assert counts(inspection["release"])["written"] == 1 and inspection["release"].written_rate == 1.0
    assert inspection["release"].acknowledged == 0 and inspection["release"].acknowledge_median is None

    by_type = {event_type: figures for (_, event_type), figures in report.by_event_type.items()}
    assert set(by_type) == {
        "AppealLodged",
        "MappaManagementChanged",
        "PrisonerEscaped",
        "PrisonerRecategorised",
        "PrisonerReleased",
        "TemporaryReleaseDecided",
    }  # no sentence (nobody referred yet), no closed-to-closed transfer
    recategorised = by_type["PrisonerRecategorised"]
    assert counts(recategorised) == {
        "events": 1,
        "victims": 3,
        "inform_victim": 1,
        "record_only": 2,
        "written": 3,
        "acknowledged": 1,
    }
    assert dict(recategorised.recorded) == {"opted_out": 1, "no_category": 1}
    assert dict(by_type["AppealLodged"].recorded) == {"not_chosen": 1, "opted_out": 1, "no_category": 1}
    assert dict(by_type["MappaManagementChanged"].recorded) == {"vlo_only": 3}
    # A's release to V1-V3 (V3's not on its queue yet) and B's, caught up for V4; B's second release was held
    # and withdrawn: counted apart, in no other figure.
    release = by_type["PrisonerReleased"]
    assert counts(release) == {
        "events": 2,
        "victims": 4,
        "inform_victim": 1,
        "record_only": 3,
        "written": 3,
        "acknowledged": 0,
    }
    assert release.withdrawn == 2
    escaped = by_type["PrisonerEscaped"]
    assert (escaped.safety_review, escaped.urgent, escaped.acknowledged, escaped.urgent_in_time) == (
        3,
        3,
        2,
        1,
    )
    assert escaped.acknowledge_median == 1440 and escaped.acknowledge_p90 == 2160  # 9 and 39 minutes

    assert set(report.by_unit) == {"YH", "NE"}
    assert report.by_unit["NE"].victims == 6 and report.by_unit["NE"].written == 5  # V3: six events
    assert report.total.victims == 19 and report.total.acknowledged == 4
    received = {
        r.event_type: (r.received, r.to_victims, r.case_only, r.no_case) for r in report.received or []
    }
    assert received["SentenceImposed"] == (2, 0, 0, 2)  # a new case's unit hears of it by the referral timer
    assert received["PrisonerTransferred"] == (1, 0, 0, 1)
    assert received["PrisonerReleased"] == (3, 3, 0, 0)
    assert report.gaps == []

    # One unit: only its victims' notifications.
    north_east = store.report("NE")
    assert north_east.total.victims == 6 and north_east.received is None
    assert [figures.victims for _, figures in north_east.inspection] == [0, 0, 0]

    table = render_table(report)
    assert (
        table.index("Move to open conditions")
        < table.index("Temporary release (ROTL)")
        < table.index("By category")
    )
    assert "43 %" in table and "67 %" in table and "88 %" in table
    assert "Gaps: none." in table

    # The console's panel: the same figures, and nothing about a victim or a case.
    view = console_view(report, at(60))
    assert [row["victims"] for row in view["inspection"]] == [1, 1, 1]
    assert view["total"]["victims"] == 19 and view["gaps"] == {"events": 0, "victims": 0, "items": []}
    shown = json.dumps(view)
    for private in ("Coverage Victim", "LS6", "NE1", "WC-CV", CASE_A, CASE_B, NOMS_A, CRN_A):
        assert private not in shown, private

    # The gauges: the same figures; series of an event type that left the window go.
    gauges = CoverageGauges()
    gauges.export(report)
    sample = REGISTRY.get_sample_value
    labels = {"category": "custody_progress", "event_type": "PrisonerRecategorised"}
    assert sample("hub_coverage_victims", {**labels, "action": "inform_victim"}) == 1
    assert sample("hub_coverage_victims", {**labels, "action": "record_only"}) == 2
    assert sample("hub_coverage_recorded_only", {**labels, "reason": "opted_out"}) == 1
    assert sample("hub_coverage_unit_victims", {"unit": "NE", "action": "record_only"}) == 5
    assert (
        sample("hub_coverage_unit_written", {"unit": "NE", "action": "record_only"}) == 4
    )  # not the release
    assert sample("hub_coverage_inspection_ratio", {"measure": "release"}) == 1.0
    assert sample("hub_coverage_urgent_acknowledged_within_target", {"unit": "YH"}) == 1
    assert (
        sample("hub_coverage_acknowledge_seconds", {"unit": "YH", "quantile": "0.5"}) == 870
    )  # 4, 20, 9, 39 min
    assert sample("hub_coverage_gaps") == 0
    gauges.export(coverage(pipeline.engine, UNTIL, UNTIL + timedelta(days=1)))
    assert sample("hub_coverage_victims", {**labels, "action": "inform_victim"}) is None


def test_a_victim_left_without_a_notification_is_listed_as_a_gap_in_every_format(
    pipeline: Pipeline, database_url: str
) -> None:
    store = build(pipeline)
    assert store.report().gaps == []

    store.delete("released A", "WC-CV-2")  # referred before the release: must have had it
    store.delete("released B", "WC-CV-4")  # referral published before the release: caught up
    store.delete("appeal", "WC-CV-3")
    report = store.report()

    found = [(g.event_id, g.event_type, g.case_ref, g.unit, g.victims, g.expected) for g in report.gaps]
    assert sorted(found) == sorted(
        [
            (store.event_ids["released A"], "PrisonerReleased", CASE_A, "YH", 1, "referred_before"),
            (store.event_ids["released B"], "PrisonerReleased", CASE_B, "YH", 1, "caught_up"),
            (store.event_ids["appeal"], "AppealLodged", CASE_A, "NE", 1, "referred_before"),
        ]
    )
    assert [g.event_type for g in store.report("NE").gaps] == ["AppealLodged"]
    assert "3 victim(s) without a notification" in render_table(report)

    runner = CliRunner()
    env = {"HUB_DATABASE_URL": database_url}
    since, until = SINCE.isoformat(timespec="seconds"), UNTIL.isoformat(timespec="seconds")
    # typer's datetime option takes no offset: instants are given in UTC without one.
    window = ["--since", since.removesuffix("+00:00"), "--until", until.removesuffix("+00:00")]

    as_json = runner.invoke(app, ["report", "coverage", *window, "--format", "json"], env=env)
    assert as_json.exit_code == 1, as_json.output  # gaps: a self-check that fails
    document = json.loads(as_json.stdout)
    assert document == json.loads(render_json(report))
    assert [i["measure"] for i in document["inspection"]] == [
        "open_conditions",
        "temporary_release",
        "release",
    ]
    assert document["gap_victims"] == 3
    assert {(g["event_id"], g["case_ref"]) for g in document["gaps"]} == {(f[0], f[2]) for f in found}

    as_csv = runner.invoke(app, ["report", "coverage", *window, "--format", "csv", "--unit", "yh"], env=env)
    assert as_csv.exit_code == 1, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows == list(csv.DictReader(io.StringIO(render_csv(store.report("YH")))))
    assert [r["measure"] for r in rows if r["level"] == "inspection"] == [
        "open_conditions",
        "temporary_release",
        "release",
    ]
    gaps = [(r["event_id"], r["case_ref"], r["expected"]) for r in rows if r["level"] == "gap"]
    assert sorted(gaps) == sorted(
        [
            (store.event_ids["released A"], CASE_A, "referred_before"),
            (store.event_ids["released B"], CASE_B, "caught_up"),
        ]
    )
    total = next(r for r in rows if r["level"] == "total")
    assert total["unit"] == "YH" and int(total["victims"]) == store.report("YH").total.victims

    as_table = runner.invoke(app, ["report", "coverage", *window], env=env)
    assert as_table.exit_code == 1 and as_table.stdout.startswith("Coverage: notifiable events applied")
    empty = runner.invoke(
        app, ["report", "coverage", "--since", "2020-01-01", "--until", "2020-02-01"], env=env
    )
    assert empty.exit_code == 0 and "Gaps: none." in empty.stdout
    unknown = runner.invoke(app, ["report", "coverage", "--unit", "ZZ"], env=env)
    assert unknown.exit_code == 2 and "no unit ZZ" in unknown.output


def test_the_console_page_has_the_coverage_panel_its_script_draws() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    script = (STATIC / "console.js").read_text(encoding="utf-8")

    assert "drawCoverage(data.coverage)" in script
    for element in (
        'id="coverage-inspection-table"',
        'id="coverage-types-table"',
        'id="coverage-units-table"',
        'id="coverage-gaps-table"',
        'id="coverage-none"',
        'id="coverage-gaps-more"',
        'data-testid="coverage-gaps"',
        'data-testid="coverage-period"',
    ):
        assert element in page, element
        name = element.split('"')[1]
        assert f'"{name}"' in script, name


def test_the_console_computes_coverage_in_a_process_of_its_own_and_leaves_none_behind(
    pipeline: Pipeline, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report takes seconds in a busy store: computed in the worker's own process it held the GIL in turns
    with urgent events, which waited up to 900 ms once a minute. The panel gets the same figures from a process
    of its own, which stops with the panel."""
    build(pipeline)
    now = T0 + timedelta(hours=2)
    since, until = default_period(now)
    expected = console_view(coverage(pipeline.engine, since, until, urgent_ack_minutes=30), now)

    def not_here(*_: object, **__: object) -> CoverageReport:
        raise AssertionError("coverage computed in the worker's own process")

    monkeypatch.setattr("hub.reports.coverage.coverage", not_here)  # this process only
    watch = CoverageWatch(database_url, {}, urgent_ack_minutes=30, clock=lambda: now)
    try:
        asyncio.run(asyncio.wait_for(watch.refresh(), timeout=60))
    finally:
        watch.close()
    assert watch.view == expected
    assert watch.view["total"]["events"] > 0
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []


KILLED_PARENT = """
import asyncio, multiprocessing, sys, time
from hub.console.coverage import CoverageWatch

watch = CoverageWatch(sys.argv[1], {}, urgent_ack_minutes=30)
asyncio.run(watch.refresh())
print(multiprocessing.active_children()[0].pid, flush=True)
time.sleep(600)
"""


def test_a_worker_killed_outright_leaves_no_coverage_process_behind(
    pipeline: Pipeline, database_url: str
) -> None:
    build(pipeline)
    parent = subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT, database_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        ready, _, _ = waiting.select([parent.stdout], [], [], 60)
        assert ready, "the coverage process did not start"
        child = int(parent.stdout.readline())
        # Running, and below the worker's CPU priority: a long report takes what the worker leaves.
        assert os.getpriority(os.PRIO_PROCESS, child) > os.getpriority(os.PRIO_PROCESS, parent.pid)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(child), "the coverage process outlived its worker"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
