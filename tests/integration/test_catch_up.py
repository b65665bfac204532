"""A victim whose referral reaches the hub a moment after an event about their case still hears of it.

The worker's pipeline on a real database (SQLite and PostgreSQL), no broker: the batches are applied in the
order a worker could consume them from separate agency topics, with publication times set by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from schemas import event_schemas
from schemas.models import NotificationModel

CODEC = hub_codec()
T0 = datetime.now(UTC) - timedelta(hours=1)
CASE, NOMS = "01CU0001226", "C1234CU"


def apply(pipeline: Pipeline, source: str, data: dict, published_at: datetime) -> list[dict]:
    event = event_from_json({**data, "published_at": published_at.isoformat()}, source, published_at)
    value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
    result = pipeline.process([InboundMessage(f"x.agency.{source}.events", 0, 0, None, None, value)])
    assert result.dead_letters == [] and result.transient == []
    return [
        NotificationModel.model_validate(CODEC.decode(n.payload).record).model_dump(mode="json")
        for n in result.notifications
    ]


SENTENCE = {
    "event_type": "SentenceImposed",
    "case_ref": CASE,
    "noms_number": NOMS,
    "court_code": "Newcastle Crown Court",  # the North East owns the case until a victim is referred
    "sentence_date": (T0 - timedelta(days=30)).date().isoformat(),
    "offences": [{"code": "OF61016", "classification": "violent"}],
    "disposal": "custody",
    "custodial_term_months": 36,
}
REFERRAL = {
    "event_type": "VictimReferred",
    "case_ref": CASE,
    "referral_date": T0.date().isoformat(),
    "victim": {"person_ref": "WC-CU-1", "name": "Catch Up", "address": {"postcode": "LS6 2AB"}},
}
ESCAPED = {
    "event_type": "PrisonerEscaped",
    "noms_number": NOMS,
    "escaped_at": T0.isoformat(),
    "escape_type": "escape_from_establishment",
}
RELEASED = {
    "event_type": "PrisonerReleased",
    "noms_number": NOMS,
    "release_type": "automatic",
    "release_date": T0.date().isoformat(),
}


def test_events_applied_before_an_earlier_published_referral_reach_the_victims_unit_too(
    pipeline: Pipeline,
) -> None:
    apply(pipeline, "court", SENTENCE, T0)
    # Published after the referral, but consumed first (another topic, another partition).
    case_level = apply(pipeline, "prison", ESCAPED, T0 + timedelta(seconds=2))
    case_level += apply(pipeline, "prison", RELEASED, T0 + timedelta(seconds=3))
    referred = apply(pipeline, "witness-care", REFERRAL, T0 + timedelta(seconds=1))

    assert [(n["unit_code"], n["person_ref"], n["event_type"]) for n in case_level] == [
        ("NE", None, "PrisonerEscaped"),
        ("NE", None, "PrisonerReleased"),
    ]
    caught_up = {n["event_type"]: n for n in referred if n["kind"] == "event"}
    assert set(caught_up) == {"PrisonerEscaped", "PrisonerReleased"}
    for n in caught_up.values():
        assert (n["unit_code"], n["person_ref"]) == ("YH", "WC-CU-1")
    assert (caught_up["PrisonerEscaped"]["action"], caught_up["PrisonerEscaped"]["priority"]) == (
        "safety_review",
        "urgent",
    )
    assert caught_up["PrisonerReleased"]["action"] == "record_only"  # no categories chosen yet
    assert caught_up["PrisonerReleased"]["summary"] == next(
        n["summary"] for n in case_level if n["event_type"] == "PrisonerReleased"
    )
    assert [n["kind"] for n in referred].count("task") == 1  # and the first-contact task, as always


def test_the_same_event_arriving_again_later_does_not_notify_the_victim_twice(pipeline: Pipeline) -> None:
    apply(pipeline, "court", SENTENCE, T0)
    event = event_from_json(
        {**ESCAPED, "published_at": (T0 + timedelta(seconds=2)).isoformat()}, "prison", T0
    )
    value = CODEC.encode(event_schemas()["PrisonerEscaped"], event.model_dump())
    message = InboundMessage("x.agency.prison.events", 0, 0, None, None, value)
    pipeline.process([message])
    referred = apply(pipeline, "witness-care", REFERRAL, T0 + timedelta(seconds=1))

    again = pipeline.process([message])  # redelivered after a restart

    assert any(n["event_type"] == "PrisonerEscaped" for n in referred)
    assert again.notifications == []


def test_events_published_before_the_referral_are_not_repeated(pipeline: Pipeline) -> None:
    apply(pipeline, "court", SENTENCE, T0)
    apply(pipeline, "prison", ESCAPED, T0 + timedelta(seconds=1))
    referred = apply(pipeline, "witness-care", REFERRAL, T0 + timedelta(minutes=5))

    assert [n["kind"] for n in referred] == ["task"]
