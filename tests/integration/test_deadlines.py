"""Deadlines on a controllable clock: the worker's pipeline and a real database, across holidays and seasons.

The clock is moved by hand to just before and just after each deadline; expected dates are counted by hand
in the comments (England and Wales working days; the trigger day is day 0).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import Settings
from hub.store.engine import make_engine
from schemas import event_schemas
from schemas.models import NotificationModel
from tests.data_keys import data_keys_in


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def pipeline(database_url: str, tmp_path: Path):
    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="x.")
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    clock = Clock(datetime(2026, 12, 18, 15, 0, tzinfo=UTC))
    yield Pipeline(settings, engine, hub_codec(), load_units(settings), clock=clock), clock
    engine.dispose()


CODEC = hub_codec()


def publish(pipeline: Pipeline, clock: Clock, source: str, data: dict) -> list[dict]:
    event = event_from_json(data, source, clock.now)
    value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
    result = pipeline.process([InboundMessage(f"x.agency.{source}.events", 0, 0, None, None, value)])
    assert result.dead_letters == []
    return decoded(result.notifications)


def decoded(notifications) -> list[dict]:
    return [
        NotificationModel.model_validate(CODEC.decode(n.payload).record).model_dump(mode="json")
        for n in notifications
    ]


def fire(pipeline: Pipeline, clock: Clock, at: datetime) -> list[dict]:
    clock.now = at
    return decoded(pipeline.fire_due_timers())


def sentenced(case_ref: str, noms: str, on: date) -> dict:
    return {
        "event_type": "SentenceImposed",
        "case_ref": case_ref,
        "noms_number": noms,
        "court_code": "Leeds Crown Court",
        "sentence_date": on.isoformat(),
        "offences": [{"code": "OF61016", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 24,
    }


def test_referral_then_first_contact_then_annual_update_across_christmas(pipeline) -> None:
    pipeline, clock = pipeline
    publish(pipeline, clock, "court", sentenced("01DD0000126", "A1234DD", date(2026, 12, 18)))

    # Fri 18 Dec 2026 is day 0. Working days skip 25 Dec, 28 Dec (Boxing Day, substitute) and 1 Jan:
    # Dec 21-24 (4), 29-31 (7), Jan 4-8 (12), 11-15 (17), 18-20 (20): due Wednesday 20 January 2027.
    assert fire(pipeline, clock, datetime(2027, 1, 20, 23, 59, tzinfo=UTC)) == []
    overdue = fire(pipeline, clock, datetime(2027, 1, 21, 0, 0, 1, tzinfo=UTC))
    assert [(n["event_type"], n["kind"], n["unit_code"], n["vlo_id"], n["due_by"]) for n in overdue] == [
        ("referral_overdue", "escalation", "YH", None, "2027-01-20")
    ]
    assert fire(pipeline, clock, datetime(2027, 1, 22, tzinfo=UTC)) == []  # fires once

    clock.now = datetime(2027, 1, 22, 10, 0, tzinfo=UTC)
    referred = publish(
        pipeline,
        clock,
        "witness-care",
        {
            "event_type": "VictimReferred",
            "case_ref": "01DD0000126",
            "referral_date": "2027-01-22",
            "victim": {"person_ref": "WC-D1", "name": "Kim Victim", "address": {"postcode": "LS6 2AB"}},
        },
    )
    # Day 20 was 20 January; then Jan 21-22 (22), 25-29 (27), Feb 1-5 (32), 8-12 (37), 15-17 (40).
    assert [(n["kind"], n["due_by"]) for n in referred] == [("task", "2027-02-17")]
    assert fire(pipeline, clock, datetime(2027, 2, 17, 23, 59, tzinfo=UTC)) == []
    missed = fire(pipeline, clock, datetime(2027, 2, 18, 0, 0, 1, tzinfo=UTC))
    assert [(n["event_type"], n["kind"], n["person_ref"], n["vlo_id"]) for n in missed] == [
        ("first_contact", "escalation", "WC-D1", None)
    ]

    clock.now = datetime(2027, 2, 19, 11, 0, tzinfo=UTC)
    publish(
        pipeline,
        clock,
        "vcs",
        {
            "event_type": "VictimContacted",
            "case_ref": "01DD0000126",
            "person_ref": "WC-D1",
            "contacted_at": "2027-02-19T10:30:00Z",
        },
    )
    assert fire(pipeline, clock, datetime(2028, 2, 19, 23, 59, tzinfo=UTC)) == []
    annual = fire(pipeline, clock, datetime(2028, 2, 20, 0, 0, 1, tzinfo=UTC))
    assert [(n["event_type"], n["kind"], n["due_by"]) for n in annual] == [
        ("annual_update", "task", "2028-02-19")
    ]


def test_a_deadline_over_easter_ends_at_midnight_british_summer_time(pipeline) -> None:
    pipeline, clock = pipeline
    clock.now = datetime(2027, 3, 18, 15, 0, tzinfo=UTC)
    publish(pipeline, clock, "court", sentenced("02DD0000226", "B1234DD", date(2027, 3, 18)))

    # Thu 18 Mar 2027 is day 0; Good Friday 26 Mar and Easter Monday 29 Mar are skipped:
    # Mar 19 (1), 22-25 (5), 30-31 (7), Apr 1-2 (9), 5-9 (14), 12-16 (19), 19 (20): due Monday 19 April.
    # London is on summer time, so 19 April ends at 23:00 UTC.
    assert fire(pipeline, clock, datetime(2027, 4, 19, 22, 59, tzinfo=UTC)) == []
    overdue = fire(pipeline, clock, datetime(2027, 4, 19, 23, 0, 1, tzinfo=UTC))
    assert [(n["event_type"], n["due_by"]) for n in overdue] == [("referral_overdue", "2027-04-19")]


def test_substitute_bank_holidays_at_new_year_are_not_working_days(pipeline) -> None:
    pipeline, clock = pipeline
    clock.now = datetime(2027, 12, 10, 15, 0, tzinfo=UTC)
    publish(pipeline, clock, "court", sentenced("03DD0000326", "C1234DD", date(2027, 12, 10)))

    # Fri 10 Dec 2027 is day 0. Christmas and Boxing Day fall on a weekend, so Mon 27 and Tue 28 Dec are
    # substitute days; New Year's Day is a Saturday, so Mon 3 Jan 2028 is too:
    # Dec 13-17 (5), 20-24 (10), 29-31 (13), Jan 4-7 (17), 10-12 (20): due Wednesday 12 January 2028.
    assert fire(pipeline, clock, datetime(2028, 1, 12, 23, 59, tzinfo=UTC)) == []
    overdue = fire(pipeline, clock, datetime(2028, 1, 13, 0, 0, 1, tzinfo=UTC))
    assert [(n["event_type"], n["due_by"]) for n in overdue] == [("referral_overdue", "2028-01-12")]
