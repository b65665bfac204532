"""Coverage: the inspection's measure, for the hub (docs/domain.md section 8.3).

The 2013 inspection found 43 % of victims told of a move to open conditions, 67 % of temporary release and 88 %
of release. This module measures the hub the same way, for a period, from the case store alone, per category,
event type and unit. Every figure counts notifications of kind `event` made for a referred victim (person_ref
set) about a notifiable event type (one with a category in routing/catalogue.py) whose event was applied in the
period (`processed_events.processed_at`); the hub makes those only for open, eligible cases, one per victim
(and for a case an appeal took out of the scheme while its unit decides).

- events: distinct events behind those notifications;
- victims: one per victim and event, split by action: to inform (`inform_victim`), recorded only
  (`record_only`, and why, from the victim's record as it is now: opted out or declined, no category chosen
  yet, this category not chosen, a VLO-only event, or choices changed since, so that they would now be
  informed), urgent safety reviews;
- written: on the unit's queue (`published_at` set); acknowledged: a `NotificationAcknowledged` named it; the
  time to acknowledge runs from the queue (or, if that was never recorded, from when it was made);
- urgent in time: urgent safety reviews acknowledged within HUB_URGENT_ACK_MINUTES of being made, before the
  escalation timer fires;
- withdrawn: counted apart, in no other figure (a release cancelled before anyone was told is not to be told).

A **gap** is a victim who should have had a notification of an event and has none (a withdrawn one counts as
had). The store keeps no link from an event to the cases it concerned other than the notifications themselves, so
an event reached case C when some event notification of C names it; then every current victim V of C should have
one of their own when either
- V was referred before the event was applied to C: V has some notification on C (any kind: the first-contact
  task made at referral, an earlier event, ...) made before the event's first notification on C; or
- V was caught up (hub/pipeline/catch_up.py): the event went to C as a case-level notification (nobody referred yet),
  not withdrawn, and V's referral, which offered V first contact (a task with event type `VictimReferred`), was
  published before the event.
Two set-based queries find them (four make the whole report), whatever the size of the period. An event all of
whose notifications were lost leaves no trace of its cases, and a victim with no notification at all before the
event is not expected to have it: the received summary counts the events that made no notification at all (no
open, eligible case with a victim yet, not notifiable on their facts, parked, or lost: the store cannot tell
which).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, case, exists, func, select
from sqlalchemy.orm import Session, aliased

from hub.store.engine import make_engine
from hub.store.models import Case, Notification, ProcessedEvent, Victim
from routing.catalogue import CATALOGUE, Category
from routing.decisions import Action, Kind, Priority

DEFAULT_DAYS = 30  # the period when none is given, and the console's and metrics' rolling window

# Event types that notify anyone; the rest only change the case store.
NOTIFIABLE = tuple(sorted(t for t, rule in CATALOGUE.items() if rule.category is not None))
REFERRAL = "VictimReferred"

# Why a victim's notification was `record_only`, in the order the reasons are checked.
RECORDED_BECAUSE = ("vlo_only", "opted_out", "no_category", "not_chosen", "changed_since", "no_victim_record")
REASON_WORDS = {
    "vlo_only": "VLO only",
    "opted_out": "opted out",
    "no_category": "no category yet",
    "not_chosen": "not chosen",
    "changed_since": "choices changed since",
    "no_victim_record": "no victim record",
}


@dataclass(frozen=True)
class InspectionMeasure:
    name: str  # also the metric label
    title: str
    event_types: tuple[str, ...]
    inspection_percent: int


# The inspection counted moves "from closed to open conditions, or vice versa", and the hub notifies a
# recategorisation or transfer only when it is one (routing/content.py); it counted the offender's actual release,
# so decisions about home detention curfew or compassionate release are not in that row.
INSPECTION = (
    InspectionMeasure(
        "open_conditions", "Move to open conditions", ("PrisonerRecategorised", "PrisonerTransferred"), 43
    ),
    InspectionMeasure("temporary_release", "Temporary release (ROTL)", ("TemporaryReleaseDecided",), 67),
    InspectionMeasure("release", "Release", ("PrisonerReleased",), 88),
)


def category_of(event_type: str) -> str:
    category = CATALOGUE[event_type].category
    return category.value if category is not None else ""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the nearest ranks (what numpy and PostgreSQL's percentile_cont give)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Figures:
    """The figures of one row: a category and event type, a unit, an inspection measure, or everything."""

    event_ids: set[str] = field(default_factory=set)
    victims: int = 0
    inform: int = 0
    recorded: Counter[str] = field(default_factory=Counter)
    safety_review: int = 0
    written: int = 0
    acknowledged: int = 0
    written_by_action: Counter[str] = field(default_factory=Counter)
    acknowledged_by_action: Counter[str] = field(default_factory=Counter)
    acknowledge_seconds: list[float] = field(default_factory=list)
    urgent: int = 0
    urgent_in_time: int = 0
    withdrawn: int = 0

    def add(self, row: _Row, reason: str | None, urgent_limit: timedelta) -> None:
        if row.withdrawn_at is not None:
            self.withdrawn += 1
            return
        self.event_ids.add(row.event_id)
        self.victims += 1
        if row.action == Action.INFORM_VICTIM.value:
            self.inform += 1
        elif row.action == Action.SAFETY_REVIEW.value:
            self.safety_review += 1
        else:
            self.recorded[reason or "no_victim_record"] += 1
        if row.published_at is not None:
            self.written += 1
            self.written_by_action[row.action] += 1
        if row.acknowledged_at is not None:
            self.acknowledged += 1
            self.acknowledged_by_action[row.action] += 1
            waited = row.acknowledged_at - (row.published_at or row.created_at)
            self.acknowledge_seconds.append(max(0.0, waited.total_seconds()))
        if row.priority == Priority.URGENT.value:
            self.urgent += 1
            if row.acknowledged_at is not None and row.acknowledged_at - row.created_at <= urgent_limit:
                self.urgent_in_time += 1

    @property
    def events(self) -> int:
        return len(self.event_ids)

    @property
    def record_only(self) -> int:
        return sum(self.recorded.values())

    @property
    def written_rate(self) -> float | None:
        return _rate(self.written, self.victims)

    @property
    def acknowledged_rate(self) -> float | None:
        return _rate(self.acknowledged, self.victims)

    @property
    def acknowledge_median(self) -> float | None:
        return percentile(self.acknowledge_seconds, 0.5)

    @property
    def acknowledge_p90(self) -> float | None:
        return percentile(self.acknowledge_seconds, 0.9)

    @property
    def urgent_in_time_rate(self) -> float | None:
        return _rate(self.urgent_in_time, self.urgent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "victims": self.victims,
            "inform_victim": self.inform,
            "record_only": self.record_only,
            "recorded_because": {reason: self.recorded.get(reason, 0) for reason in RECORDED_BECAUSE},
            "safety_review": self.safety_review,
            "written": self.written,
            "written_rate": _round(self.written_rate),
            "acknowledged": self.acknowledged,
            "acknowledged_rate": _round(self.acknowledged_rate),
            "acknowledge_median_seconds": _round(self.acknowledge_median, 1),
            "acknowledge_p90_seconds": _round(self.acknowledge_p90, 1),
            "urgent": self.urgent,
            "urgent_acknowledged_in_time": self.urgent_in_time,
            "urgent_in_time_rate": _round(self.urgent_in_time_rate),
            "withdrawn": self.withdrawn,
        }


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


@dataclass(frozen=True)
class _Row:
    event_type: str
    unit: str
    action: str
    priority: str
    event_id: str
    created_at: datetime
    published_at: datetime | None
    acknowledged_at: datetime | None
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class Received:
    """Notifiable events of one type applied in the period, by how far they reached."""

    event_type: str
    received: int
    to_victims: int  # at least one referred victim of an eligible case
    case_only: int  # only cases with nobody referred yet (their victims are caught up when referred)

    @property
    def no_case(self) -> int:
        return self.received - self.to_victims - self.case_only


@dataclass(frozen=True)
class Gap:
    event_id: str
    event_type: str
    case_ref: str
    unit: str  # the unit of the victims left without it
    victims: int
    expected: str  # referred_before: the victim was there when it was applied; caught_up: see hub/pipeline/catch_up.py


@dataclass
class CoverageReport:
    since: datetime
    until: datetime
    unit: str | None
    urgent_ack_minutes: float
    inspection: list[tuple[InspectionMeasure, Figures]]
    by_event_type: dict[tuple[str, str], Figures]
    by_unit: dict[str, Figures]
    detail: dict[tuple[str, str, str], Figures]
    total: Figures
    received: list[Received] | None  # None for one unit: an event reaching no victim has no unit
    gaps: list[Gap]

    @property
    def gap_victims(self) -> int:
        return sum(gap.victims for gap in self.gaps)


def default_period(now: datetime, days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now


def coverage(
    engine: Engine,
    since: datetime,
    until: datetime,
    *,
    unit: str | None = None,
    urgent_ack_minutes: float = 30.0,
) -> CoverageReport:
    """The figures for events applied at or after `since` and before `until`, in one read-only transaction."""
    applied = (ProcessedEvent.processed_at >= since, ProcessedEvent.processed_at < until)
    with Session(engine) as session, session.begin():
        rows = session.execute(_figure_rows(applied, unit)).all()
        received = None if unit else _received(session, applied)
        gaps = _gaps(session, applied, unit)
    urgent_limit = timedelta(minutes=urgent_ack_minutes)
    measures = {t: measure for measure in INSPECTION for t in measure.event_types}
    inspection = {measure.name: Figures() for measure in INSPECTION}
    by_event_type: dict[tuple[str, str], Figures] = {}
    by_unit: dict[str, Figures] = {}
    detail: dict[tuple[str, str, str], Figures] = {}
    total = Figures()
    for *columns, opted_out, declined, categories, has_victim in rows:
        row = _Row(*columns)
        category = category_of(row.event_type)
        reason = _recorded_because(category, opted_out, declined, categories, has_victim is not None)
        for figures in (
            by_event_type.setdefault((category, row.event_type), Figures()),
            by_unit.setdefault(row.unit, Figures()),
            detail.setdefault((category, row.event_type, row.unit), Figures()),
            total,
        ):
            figures.add(row, reason, urgent_limit)
        measure = measures.get(row.event_type)
        if measure is not None and row.action == Action.INFORM_VICTIM.value:
            inspection[measure.name].add(row, reason, urgent_limit)
    return CoverageReport(
        since=since,
        until=until,
        unit=unit,
        urgent_ack_minutes=urgent_ack_minutes,
        inspection=[(measure, inspection[measure.name]) for measure in INSPECTION],
        by_event_type=dict(sorted(by_event_type.items())),
        by_unit=dict(sorted(by_unit.items())),
        detail=dict(sorted(detail.items())),
        total=total,
        received=received,
        gaps=gaps,
    )


def coverage_of_store(
    database_url: str,
    connect_args: Mapping[str, str],
    since: datetime,
    until: datetime,
    *,
    urgent_ack_minutes: float = 30.0,
) -> CoverageReport:
    """`coverage` of the store at `database_url`, which a process of its own opens for the call (the worker's
    console computes it so: hub/console/coverage.py). It reads no encrypted column, so it needs no data key."""
    engine = make_engine(database_url, connect_args=connect_args, migrate=False)
    try:
        return coverage(engine, since, until, urgent_ack_minutes=urgent_ack_minutes)
    finally:
        engine.dispose()


def _recorded_because(
    category: str, opted_out: bool | None, declined: bool | None, categories: Any, found: bool
) -> str:
    if category == Category.RECORD_ONLY.value:
        return "vlo_only"
    if not found:
        return "no_victim_record"
    if opted_out or declined:
        return "opted_out"
    if categories is None:
        return "no_category"
    if category not in categories:
        return "not_chosen"
    return "changed_since"


def _victim_notifications(applied: Iterable[ColumnElement[bool]]) -> tuple[ColumnElement[bool], ...]:
    return (
        Notification.kind == Kind.EVENT.value,
        Notification.person_ref.is_not(None),
        Notification.event_type.in_(NOTIFIABLE),
        *applied,
    )


def _figure_rows(applied: tuple[ColumnElement[bool], ...], unit: str | None) -> Select[*tuple[Any, ...]]:
    """One row per victim and event: only references, codes and times (no payload, no personal field)."""
    query = (
        select(
            Notification.event_type,
            Notification.unit_code,
            Notification.action,
            Notification.priority,
            Notification.source_event_id,
            Notification.created_at,
            Notification.published_at,
            Notification.acknowledged_at,
            Notification.withdrawn_at,
            Victim.opted_out,
            Victim.declined,
            Victim.categories,
            Victim.id,
        )
        .join(ProcessedEvent, ProcessedEvent.event_id == Notification.source_event_id)
        .outerjoin(
            Victim, and_(Victim.case_id == Notification.case_id, Victim.person_ref == Notification.person_ref)
        )
        .where(*_victim_notifications(applied))
    )
    return query.where(Notification.unit_code == unit) if unit else query


def _received(session: Session, applied: tuple[ColumnElement[bool], ...]) -> list[Received]:
    per_event = (
        select(
            ProcessedEvent.event_type.label("event_type"),
            func.max(case((Notification.person_ref.is_not(None), 1), else_=0)).label("to_victims"),
            func.count(Notification.notification_id).label("made"),
        )
        .select_from(ProcessedEvent)
        .outerjoin(
            Notification,
            and_(
                Notification.source_event_id == ProcessedEvent.event_id,
                Notification.kind == Kind.EVENT.value,
            ),
        )
        .where(ProcessedEvent.event_type.in_(NOTIFIABLE), *applied)
        .group_by(ProcessedEvent.event_id, ProcessedEvent.event_type)
        .subquery()
    )
    rows = session.execute(
        select(
            per_event.c.event_type,
            func.count(),
            func.sum(per_event.c.to_victims),
            func.sum(case((and_(per_event.c.made > 0, per_event.c.to_victims == 0), 1), else_=0)),
        )
        .group_by(per_event.c.event_type)
        .order_by(per_event.c.event_type)
    ).all()
    return [
        Received(t, received, int(to_victims or 0), int(case_only or 0))
        for t, received, to_victims, case_only in rows
    ]


def _gaps(session: Session, applied: tuple[ColumnElement[bool], ...], unit: str | None) -> list[Gap]:
    """Victims who should have had a notification of an event and have none (the module's docstring)."""
    told = aliased(Notification)  # the event's notifications on a case
    mine = aliased(Notification)  # the victim's notification of the event
    earlier = aliased(Notification)  # anything the victim had on the case before the event
    offered = aliased(Notification)  # the first-contact offer the victim's referral made

    reached = (
        select(
            told.source_event_id.label("event_id"),
            told.case_id.label("case_id"),
            told.event_type.label("event_type"),
            func.min(told.created_at).label("applied_at"),
        )
        .join(ProcessedEvent, ProcessedEvent.event_id == told.source_event_id)
        .where(
            told.kind == Kind.EVENT.value,
            told.event_type.in_(NOTIFIABLE),
            told.case_id.is_not(None),
            *applied,
        )
        .group_by(told.source_event_id, told.case_id, told.event_type)
        .subquery()
    )
    on_unit = (Victim.unit_code == unit,) if unit else ()
    referred_before = session.execute(
        select(reached.c.event_id, reached.c.event_type, Case.case_ref, Victim.unit_code, Victim.id)
        .join(Victim, Victim.case_id == reached.c.case_id)
        .join(Case, Case.id == reached.c.case_id)
        .where(
            exists().where(
                earlier.case_id == reached.c.case_id,
                earlier.person_ref == Victim.person_ref,
                earlier.created_at < reached.c.applied_at,
            ),
            ~exists().where(
                mine.source_event_id == reached.c.event_id,
                mine.case_id == reached.c.case_id,
                mine.person_ref == Victim.person_ref,
                mine.kind == Kind.EVENT.value,
            ),
            *on_unit,
        )
    ).all()
    caught_up = session.execute(
        select(told.source_event_id, told.event_type, Case.case_ref, Victim.unit_code, Victim.id)
        .join(ProcessedEvent, ProcessedEvent.event_id == told.source_event_id)
        .join(Victim, Victim.case_id == told.case_id)
        .join(Case, Case.id == told.case_id)
        .where(
            told.kind == Kind.EVENT.value,
            told.person_ref.is_(None),
            told.withdrawn_at.is_(None),
            told.event_type.in_(NOTIFIABLE),
            *applied,
            exists().where(
                offered.case_id == told.case_id,
                offered.person_ref == Victim.person_ref,
                offered.kind == Kind.TASK.value,
                offered.event_type == REFERRAL,
                offered.event_published_at < told.event_published_at,
            ),
            ~exists().where(
                mine.source_event_id == told.source_event_id,
                mine.case_id == told.case_id,
                mine.person_ref == Victim.person_ref,
                mine.kind == Kind.EVENT.value,
            ),
            *on_unit,
        )
    ).all()
    missing: Counter[tuple[str, str, str, str, str]] = Counter()
    seen: set[tuple[str, int]] = set()
    for expected, rows in (("referred_before", referred_before), ("caught_up", caught_up)):
        for event_id, event_type, case_ref, victim_unit, victim_id in rows:
            # event_id is never None: both queries join it to the processed event
            if event_id is not None and (event_id, victim_id) not in seen:
                seen.add((event_id, victim_id))
                missing[(event_id, event_type, case_ref, victim_unit, expected)] += 1
    return [
        Gap(event_id, event_type, case_ref, victim_unit, count, expected)
        for (event_id, event_type, case_ref, victim_unit, expected), count in sorted(missing.items())
    ]


# ---- output


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.1f} %"


def _count_and_rate(count: int, rate: float | None) -> str:
    return f"{count:,} ({_percent(rate)})" if rate is not None else f"{count:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _because(figures: Figures) -> str:
    return ", ".join(
        f"{REASON_WORDS[reason]} {figures.recorded[reason]:,}"
        for reason in RECORDED_BECAUSE
        if figures.recorded.get(reason)
    )


def _grid(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: int, last_left: bool = False
) -> list[str]:
    """A plain-text table: the first `left` columns (and the last, if `last_left`) aligned left, the rest right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lefts = set(range(left)) | ({len(widths) - 1} if last_left else set())

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(cell).ljust(width) if index in lefts else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]


FIGURE_HEADERS = (
    "Events",
    "Victims",
    "Inform",
    "Record only",
    "Safety review",
    "Written",
    "Acknowledged",
    "Median",
    "p90",
    "Urgent in time",
    "Withdrawn",
    "Recorded only because",
)


def _figure_cells(figures: Figures) -> list[str]:
    urgent = f"{figures.urgent_in_time:,}/{figures.urgent:,}" if figures.urgent else "–"
    return [
        f"{figures.events:,}",
        f"{figures.victims:,}",
        f"{figures.inform:,}",
        f"{figures.record_only:,}",
        f"{figures.safety_review:,}",
        _count_and_rate(figures.written, figures.written_rate),
        _count_and_rate(figures.acknowledged, figures.acknowledged_rate),
        duration(figures.acknowledge_median),
        duration(figures.acknowledge_p90),
        urgent,
        f"{figures.withdrawn:,}",
        _because(figures),
    ]


def _when(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"


def render_table(report: CoverageReport) -> str:
    where = f"unit {report.unit}" if report.unit else "all units"
    lines = [
        f"Coverage: notifiable events applied from {_when(report.since)} to {_when(report.until)}, {where}.",
        "Victims of eligible cases referred when the event arrived (or caught up on it); urgent safety reviews "
        f"are due within {report.urgent_ack_minutes:g} min.",
        "",
        "The inspection's measures: victims to be informed, and how many the hub told their VLO",
    ]
    lines += _grid(
        ("Measure", "Events", "To inform", "Written", "Acknowledged", "Median", "p90", "Inspection"),
        [
            (
                measure.title,
                f"{figures.events:,}",
                f"{figures.victims:,}",
                _count_and_rate(figures.written, figures.written_rate),
                _count_and_rate(figures.acknowledged, figures.acknowledged_rate),
                duration(figures.acknowledge_median),
                duration(figures.acknowledge_p90),
                f"{measure.inspection_percent} %",
            )
            for measure, figures in report.inspection
        ],
        left=1,
    )
    lines += ["", "By category and event type"]
    lines += _grid(
        ("Category", "Event type", *FIGURE_HEADERS),
        [
            [category, event_type, *_figure_cells(figures)]
            for (category, event_type), figures in report.by_event_type.items()
        ]
        + [["all", "", *_figure_cells(report.total)]],
        left=2,
        last_left=True,
    )
    lines += ["", "By unit"]
    lines += _grid(
        ("Unit", *FIGURE_HEADERS),
        [[unit, *_figure_cells(figures)] for unit, figures in report.by_unit.items()]
        + [["all", *_figure_cells(report.total)]],
        left=1,
        last_left=True,
    )
    lines.append("")
    if report.received is not None:
        received = sum(r.received for r in report.received)
        to_victims = sum(r.to_victims for r in report.received)
        case_only = sum(r.case_only for r in report.received)
        no_case = sum(r.no_case for r in report.received)
        lines.append(
            f"Received: {received:,} notifiable events; {to_victims:,} reached referred victims, {case_only:,} "
            f"only a case with nobody referred yet, {no_case:,} made no notification (no open, eligible case "
            "with a victim, not notifiable on their facts, or parked)."
        )
    if not report.gaps:
        lines.append(
            "Gaps: none. Every victim referred before an event, or caught up on it, has its notification."
        )
    else:
        lines.append(
            f"Gaps: {len(report.gaps):,} event(s) left {report.gap_victims:,} victim(s) without a notification:"
        )
        lines += _grid(
            ("Event id", "Event type", "Case ref", "Unit", "Victims", "Expected because"),
            [
                (gap.event_id, gap.event_type, gap.case_ref, gap.unit, f"{gap.victims:,}", gap.expected)
                for gap in report.gaps
            ],
            left=4,
        )
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "level",
    "measure",
    "category",
    "event_type",
    "unit",
    "events",
    "victims",
    "inform_victim",
    "record_only",
    *(f"recorded_{reason}" for reason in RECORDED_BECAUSE),
    "safety_review",
    "written",
    "written_rate",
    "acknowledged",
    "acknowledged_rate",
    "acknowledge_median_seconds",
    "acknowledge_p90_seconds",
    "urgent",
    "urgent_acknowledged_in_time",
    "urgent_in_time_rate",
    "withdrawn",
    "inspection_rate",
    "event_id",
    "case_ref",
    "expected",
)


def _csv_figures(figures: Figures) -> dict[str, Any]:
    values = figures.as_dict()
    because = values.pop("recorded_because")
    return {**values, **{f"recorded_{reason}": count for reason, count in because.items()}}


def render_csv(report: CoverageReport) -> str:
    """One row per figure line, `level` saying which: inspection, event_type, unit, event_type_unit, total, gap."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    everywhere = report.unit or "all"
    for measure, figures in report.inspection:
        writer.writerow(
            {
                "level": "inspection",
                "measure": measure.name,
                "event_type": " ".join(measure.event_types),
                "unit": everywhere,
                **_csv_figures(figures),
                "inspection_rate": measure.inspection_percent / 100,
            }
        )
    for (category, event_type), figures in report.by_event_type.items():
        writer.writerow(
            {
                "level": "event_type",
                "category": category,
                "event_type": event_type,
                "unit": everywhere,
                **_csv_figures(figures),
            }
        )
    for unit, figures in report.by_unit.items():
        writer.writerow({"level": "unit", "unit": unit, **_csv_figures(figures)})
    for (category, event_type, unit), figures in report.detail.items():
        writer.writerow(
            {
                "level": "event_type_unit",
                "category": category,
                "event_type": event_type,
                "unit": unit,
                **_csv_figures(figures),
            }
        )
    writer.writerow({"level": "total", "unit": everywhere, **_csv_figures(report.total)})
    for gap in report.gaps:
        writer.writerow(
            {
                "level": "gap",
                "category": category_of(gap.event_type),
                "event_type": gap.event_type,
                "unit": gap.unit,
                "victims": gap.victims,
                "event_id": gap.event_id,
                "case_ref": gap.case_ref,
                "expected": gap.expected,
            }
        )
    return out.getvalue()


def as_json(report: CoverageReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "unit": report.unit,
        "urgent_ack_minutes": report.urgent_ack_minutes,
        "inspection": [
            {
                "measure": measure.name,
                "title": measure.title,
                "event_types": list(measure.event_types),
                "inspection_rate": measure.inspection_percent / 100,
                **figures.as_dict(),
            }
            for measure, figures in report.inspection
        ],
        "by_event_type": [
            {"category": category, "event_type": event_type, **figures.as_dict()}
            for (category, event_type), figures in report.by_event_type.items()
        ],
        "by_unit": [{"unit": unit, **figures.as_dict()} for unit, figures in report.by_unit.items()],
        "by_event_type_and_unit": [
            {"category": category, "event_type": event_type, "unit": unit, **figures.as_dict()}
            for (category, event_type, unit), figures in report.detail.items()
        ],
        "total": report.total.as_dict(),
        "received": None
        if report.received is None
        else [
            {
                "event_type": r.event_type,
                "received": r.received,
                "to_victims": r.to_victims,
                "case_only": r.case_only,
                "no_case": r.no_case,
            }
            for r in report.received
        ],
        "gaps": [
            {
                "event_id": gap.event_id,
                "event_type": gap.event_type,
                "case_ref": gap.case_ref,
                "unit": gap.unit,
                "victims": gap.victims,
                "expected": gap.expected,
            }
            for gap in report.gaps
        ],
        "gap_victims": report.gap_victims,
    }


def render_json(report: CoverageReport) -> str:
    return json.dumps(as_json(report), indent=2) + "\n"
