"""What the hub writes for other agencies (docs/domain.md section 8), through the worker's pipeline on a real
database (SQLite and PostgreSQL), no broker: licence condition requests forwarded and reconciled, and the scheme
flag for offender-facing systems. The worker seals and publishes what the pipeline hands over (tests/scenarios
read the real topics).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import BatchResult, Pipeline
from hub.store.erasure import erase_victim
from hub.store.models import LicenceRequest, OutboxRecord
from hub.store.retention import Retention
from schemas import event_schemas
from schemas.models import NotificationModel

CODEC = hub_codec()
CASE, NOMS, CRN, PNC = "01OB0000126", "B1234OB", "B123456", "2019/0045123K"
PERSON, SIBLING = "WC-OB-1", "WC-OB-2"
NAME, POSTCODE, PHONE, EMAIL = "Ffion Marchetti", "LS6 2AB", "07700 900481", "ffion.marchetti@example.org"
SIBLING_NAME, SIBLING_POSTCODE = "Aled Marchetti", "LS1 4AP"
NO_CONTACT = "Not to contact Ffion Marchetti directly or indirectly"
EXCLUSION = "Not to enter the area of Headingley, Leeds, shown on the map"


def sentence(**extra: Any) -> dict[str, Any]:
    return {
        "event_type": "SentenceImposed",
        "case_ref": CASE,
        "noms_number": NOMS,
        "court_code": "Leeds Crown Court",
        "sentence_date": (datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
        "offender": {"name": "Rhodri Offender", "pnc": PNC},
        "offences": [{"code": "OF61016", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 36,
        **extra,
    }


def referral(person_ref: str = PERSON, name: str = NAME, postcode: str = POSTCODE) -> dict[str, Any]:
    return {
        "event_type": "VictimReferred",
        "case_ref": CASE,
        "referral_date": datetime.now(UTC).date().isoformat(),
        "victim": {
            "person_ref": person_ref,
            "name": name,
            "address": {"lines": ["3 Cardigan Road"], "town": "Leeds", "postcode": postcode},
            "phone": PHONE,
            "email": EMAIL,
        },
    }


def request(*conditions: dict[str, Any], person_ref: str = PERSON) -> dict[str, Any]:
    return {
        "event_type": "LicenceConditionsRequested",
        "case_ref": CASE,
        "person_ref": person_ref,
        "requested_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "conditions": list(conditions),
    }


def licence_set(
    conditions: list[dict[str, Any]], omitted: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "event_type": "LicenceConditionsSet",
        "crn": CRN,
        "noms_number": NOMS,
        "effective_date": datetime.now(UTC).date().isoformat(),
        "conditions": conditions,
        "omitted_requested_conditions": omitted or [],
    }


ALLOCATED = {"event_type": "CaseAllocated", "case_ref": CASE, "unit_code": "YH", "vlo_id": "vlo-yh-ob"}
LINKED = {
    "event_type": "OffenderIdentifiersLinked",
    "crn": CRN,
    "noms_number": NOMS,
    "linked_date": datetime.now(UTC).date().isoformat(),
}
REVIEW = {
    "event_type": "ParoleReviewStarted",
    "pb_case_ref": "PB-OB-1",
    "noms_number": NOMS,
    "review_type": "determinate",
    "start_date": datetime.now(UTC).date().isoformat(),
}


def parole_decision(outcome: str) -> dict[str, Any]:
    return {
        "event_type": "ParoleDecisionIssued",
        "pb_case_ref": "PB-OB-1",
        "noms_number": NOMS,
        "outcome": outcome,
        "decision_date": datetime.now(UTC).date().isoformat(),
        "provisional": False,
    }


def apply(pipeline: Pipeline, *steps: tuple[str, dict[str, Any]]) -> BatchResult:
    """Each event in a batch of its own, in order; what they all came to."""
    total = BatchResult()
    for source, data in steps:
        event = event_from_json(data, source, datetime.now(UTC))
        value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
        result = pipeline.process([InboundMessage(f"x.agency.{source}.events", 0, 0, None, None, value)])
        assert result.dead_letters == [], [
            dict(d.headers).get("hub.error.message") for d in result.dead_letters
        ]
        total.notifications += result.notifications
        total.outbound += result.outbound
    return total


def opened_case(pipeline: Pipeline) -> BatchResult:
    return apply(
        pipeline,
        ("court", sentence()),
        ("vcs", ALLOCATED),
        ("probation", LINKED),
        ("witness-care", referral()),
    )


def records(result: BatchResult, record_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic, decoded record) of each outbound record of one type."""
    found = []
    for row in result.outbound:
        if row.record_type == record_type:
            assert row.payload is not None
            found.append((row.topic, CODEC.decode(row.payload).record))
    return found


def notifications(result: BatchResult) -> list[dict[str, Any]]:
    return [
        NotificationModel.model_validate(CODEC.decode(n.payload).record).model_dump(mode="json")
        for n in result.notifications
        if n.payload is not None
    ]


def assert_no_victim_data(result: BatchResult) -> None:
    for row in result.outbound:
        text = json.dumps(CODEC.decode(row.payload or b"").record, default=str)
        for value in (
            NAME,
            SIBLING_NAME,
            PERSON,
            SIBLING,
            POSTCODE,
            SIBLING_POSTCODE,
            PHONE,
            EMAIL,
            "Cardigan",
        ):
            assert value not in text, (row.record_type, value)


def test_a_request_goes_to_the_probation_practitioner_with_the_condition_text_and_identifiers_only(
    pipeline: Pipeline,
) -> None:
    opened_case(pipeline)
    asked = apply(pipeline, ("vcs", request({"kind": "exclusion_zone", "text": EXCLUSION, "code": "EXZ1"})))

    [(topic, record)] = records(asked, "LicenceConditionsRequestForwarded")
    assert topic == "x.outbound.probation"
    assert (record["case_ref"], record["noms_number"], record["crn"], record["pnc"]) == (CASE, NOMS, CRN, PNC)
    assert [(c["kind"], c["text"], c["code"]) for c in record["conditions"]] == [
        ("exclusion_zone", EXCLUSION, "EXZ1")
    ]
    assert record["conditions"][0]["request_id"] == f"{record['request_id']}:0"
    assert (record["forwarded_to"], record["parole_review_open"]) == (["probation"], False)
    assert_no_victim_data(asked)
    assert asked.notifications == []
    with Session(pipeline.engine) as session:
        stored = session.scalars(select(LicenceRequest)).one()
        assert (stored.person_ref, stored.kind, stored.text, stored.outcome) == (
            PERSON,
            "exclusion_zone",
            EXCLUSION,
            None,
        )


def test_while_a_parole_review_is_open_the_parole_board_gets_the_request_too(pipeline: Pipeline) -> None:
    opened_case(pipeline)
    apply(pipeline, ("parole-board", REVIEW))
    during = apply(pipeline, ("vcs", request({"kind": "no_contact", "text": NO_CONTACT})))
    assert sorted(topic for topic, _ in records(during, "LicenceConditionsRequestForwarded")) == [
        "x.outbound.parole-board",
        "x.outbound.probation",
    ]
    assert {
        record["parole_review_open"] for _, record in records(during, "LicenceConditionsRequestForwarded")
    } == {True}

    # A refusal to release sets no licence: the request stays outstanding, nobody is escalated to.
    refused = apply(pipeline, ("parole-board", parole_decision("no_release")))
    assert [n["kind"] for n in notifications(refused)] == ["event"]
    assert notifications(refused)[0]["request_outcomes"] == []
    after = apply(pipeline, ("vcs", request({"kind": "other", "text": "To report weekly"})))
    assert [topic for topic, _ in records(after, "LicenceConditionsRequestForwarded")] == [
        "x.outbound.probation"
    ]
    with Session(pipeline.engine) as session:
        assert session.scalars(select(LicenceRequest.outcome)).all() == [None, None]


def test_a_licence_setting_only_no_contact_escalates_the_unaddressed_exclusion_zone_to_the_vlo(
    pipeline: Pipeline,
) -> None:
    opened_case(pipeline)
    apply(
        pipeline,
        ("witness-care", referral(SIBLING, SIBLING_NAME, SIBLING_POSTCODE)),
        (
            "vcs",
            request(
                {"kind": "no_contact", "text": NO_CONTACT}, {"kind": "exclusion_zone", "text": EXCLUSION}
            ),
        ),
    )
    decided = apply(
        pipeline,
        # The licence words it differently: case, spacing and punctuation do not matter.
        (
            "probation",
            licence_set(
                [{"text": "not to contact Ffion  Marchetti, directly or indirectly.", "victim_related": True}]
            ),
        ),
    )

    told = notifications(decided)
    [event] = [n for n in told if n["kind"] == "event" and n["person_ref"] == PERSON]
    assert event["request_outcomes"] == [
        {"text": NO_CONTACT, "outcome": "set", "reason": None},
        {"text": EXCLUSION, "outcome": "not_addressed", "reason": None},
    ]
    assert "1 not addressed" in event["summary"]
    [sibling] = [n for n in told if n["kind"] == "event" and n["person_ref"] == SIBLING]
    assert sibling["request_outcomes"] == []  # another victim's requests are never shown
    [escalation] = [n for n in told if n["kind"] == "escalation"]
    assert (escalation["person_ref"], escalation["unit_code"], escalation["vlo_id"]) == (
        PERSON,
        "YH",
        "vlo-yh-ob",
    )
    assert (escalation["event_type"], escalation["action"], escalation["priority"]) == (
        "LicenceConditionsSet",
        "task",
        "high",
    )
    assert EXCLUSION in escalation["summary"] and NO_CONTACT not in escalation["summary"]
    assert escalation["request_outcomes"] == [{"text": EXCLUSION, "outcome": "not_addressed", "reason": None}]

    # Reconciled once: a later decision finds nothing outstanding.
    again = apply(pipeline, ("probation", licence_set([])))
    assert [n["kind"] for n in notifications(again)] == ["event", "event"]
    with Session(pipeline.engine) as session:
        rows = session.scalars(select(LicenceRequest).order_by(LicenceRequest.id)).all()
        assert [(r.outcome, r.decided_by_event_id is not None) for r in rows] == [
            ("set", True),
            ("not_addressed", True),
        ]


def test_a_code_matches_before_the_text_and_an_omission_needs_a_reason(pipeline: Pipeline) -> None:
    opened_case(pipeline)
    apply(
        pipeline,
        (
            "vcs",
            request(
                {"kind": "exclusion_zone", "text": EXCLUSION, "code": "EXZ1"},
                {"kind": "other", "text": "Electronic monitoring of the zone"},
                {"kind": "other", "text": "No social media contact"},
            ),
        ),
    )
    decided = apply(
        pipeline,
        (
            "probation",
            {
                "event_type": "LicenceVaried",
                "crn": CRN,
                "effective_date": datetime.now(UTC).date().isoformat(),
                "added": [{"code": "exz1", "text": "Exclusion zone as mapped", "victim_related": True}],
                "omitted_requested_conditions": [
                    {
                        "text": "electronic monitoring of the zone.",
                        "reason": "Not available for this licence",
                    },
                    {"text": "No social media contact", "reason": "  "},
                ],
            },
        ),
    )
    [event] = [n for n in notifications(decided) if n["kind"] == "event"]
    assert [(o["outcome"], o["reason"]) for o in event["request_outcomes"]] == [
        ("set", None),
        ("omitted", "Not available for this licence"),
        ("not_addressed", None),
    ]
    [escalation] = [n for n in notifications(decided) if n["kind"] == "escalation"]
    assert escalation["request_outcomes"] == [
        {"text": "No social media contact", "outcome": "not_addressed", "reason": None}
    ]


def flags(result: BatchResult) -> list[tuple[str, bool, str, str]]:
    return [
        (topic, record["in_scheme"], record["unit_code"], record["unit_name"])
        for topic, record in records(result, "SchemeFlagChanged")
    ]


def test_the_scheme_flag_goes_to_offender_facing_systems_when_a_case_enters_and_leaves_the_scheme(
    pipeline: Pipeline,
) -> None:
    assert flags(apply(pipeline, ("court", sentence()), ("vcs", ALLOCATED), ("probation", LINKED))) == []
    entered = apply(pipeline, ("witness-care", referral()))
    yorkshire = "Yorkshire and the Humber Victim Contact Unit"
    assert sorted(flags(entered)) == [
        ("x.outbound.prison", True, "YH", yorkshire),
        ("x.outbound.probation", True, "YH", yorkshire),
    ]
    [(_, record)] = records(entered, "SchemeFlagChanged")[:1]
    assert (record["case_ref"], record["noms_number"], record["crn"], record["pnc"]) == (CASE, NOMS, CRN, PNC)
    still_in = apply(
        pipeline,
        ("witness-care", referral(SIBLING, SIBLING_NAME, SIBLING_POSTCODE)),
        ("vcs", {"event_type": "VictimOptedOut", "case_ref": CASE, "person_ref": PERSON}),
    )
    assert flags(still_in) == []  # the sibling is still in the scheme
    left = apply(
        pipeline,
        (
            "witness-care",
            {
                "event_type": "VictimDeclinedScheme",
                "case_ref": CASE,
                "person_ref": SIBLING,
                "declined_date": datetime.now(UTC).date().isoformat(),
            },
        ),
    )
    assert [(topic, in_scheme) for topic, in_scheme, _, _ in sorted(flags(left))] == [
        ("x.outbound.prison", False),
        ("x.outbound.probation", False),
    ]
    back = apply(pipeline, ("vcs", {"event_type": "VictimOptedIn", "case_ref": CASE, "person_ref": PERSON}))
    assert {in_scheme for _, in_scheme, _, _ in flags(back)} == {True}
    closed = apply(
        pipeline,
        (
            "probation",
            {
                "event_type": "LicenceEnded",
                "crn": CRN,
                "noms_number": NOMS,
                "end_date": datetime.now(UTC).date().isoformat(),
            },
        ),
    )
    assert {in_scheme for _, in_scheme, _, _ in flags(closed)} == {False}
    for result in (entered, left, back, closed):
        assert_no_victim_data(result)
        assert {row.person_ref for row in result.outbound} == {None}


def test_erasing_the_last_victim_in_the_scheme_writes_the_flag_and_drops_their_forwarded_request(
    pipeline: Pipeline,
) -> None:
    opened_case(pipeline)
    apply(pipeline, ("vcs", request({"kind": "exclusion_zone", "text": EXCLUSION})))
    done = erase_victim(
        pipeline.engine,
        CASE,
        PERSON,
        "the victim asked",
        "tester",
        datetime.now(UTC),
        settings=pipeline.settings,
    )
    assert (done.scheme_flag, done.requests_cleared, done.outbound_dropped) == (False, 1, 1)
    with Session(pipeline.engine) as session:
        rows = session.scalars(select(OutboxRecord).order_by(OutboxRecord.id)).all()
        flag_rows = [r for r in rows if r.record_type == "SchemeFlagChanged"]
        assert [CODEC.decode(r.payload).record["in_scheme"] for r in flag_rows if r.payload] == [
            True,
            True,
            False,
            False,
        ]
        assert [r.payload for r in rows if r.record_type == "LicenceConditionsRequestForwarded"] == [None]
        assert session.scalars(select(LicenceRequest.text)).all() == [None]


def test_the_outbox_sweep_takes_what_a_crash_left_and_a_publication_marks_it(pipeline: Pipeline) -> None:
    made = opened_case(pipeline)
    assert len(made.outbound) == 2
    later = pipeline.clock() + timedelta(minutes=5)
    clock = pipeline.clock
    pipeline.clock = lambda: later
    try:
        pending = pipeline.pending_outbound()
        assert sorted(r.topic for r in pending) == ["x.outbound.prison", "x.outbound.probation"]
        pipeline.published([], later, [r.id for r in pending])
        pipeline.confirm_published()
        assert pipeline.pending_outbound() == []
    finally:
        pipeline.clock = clock


def test_retention_drops_outbound_payloads_once_their_topic_has_dropped_them(pipeline: Pipeline) -> None:
    made = opened_case(pipeline)
    pipeline.published([], datetime.now(UTC) - timedelta(days=40), [r.id for r in made.outbound])
    pipeline.confirm_published()
    retention = Retention(pipeline.settings, pipeline.engine)
    due = {report.step: report.count for report in retention.due()}
    assert due["outbound_payloads"] == 2

    async def send(_: Any) -> None:
        return None

    asyncio.run(retention.run(send))
    with Session(pipeline.engine) as session:
        assert session.scalars(select(OutboxRecord.payload)).all() == [None, None]


def test_a_parole_release_decision_reconciles_and_closes_the_review(pipeline: Pipeline) -> None:
    opened_case(pipeline)
    apply(pipeline, ("parole-board", REVIEW), ("vcs", request({"kind": "no_contact", "text": NO_CONTACT})))
    decision = {
        **parole_decision("release"),
        "licence_conditions": [{"text": NO_CONTACT, "victim_related": True}],
    }
    decided = apply(pipeline, ("parole-board", decision))
    [event] = [n for n in notifications(decided) if n["kind"] == "event"]
    assert event["request_outcomes"] == [{"text": NO_CONTACT, "outcome": "set", "reason": None}]
    after = apply(pipeline, ("vcs", request({"kind": "other", "text": "To report weekly"})))
    assert [topic for topic, _ in records(after, "LicenceConditionsRequestForwarded")] == [
        "x.outbound.probation"
    ]
